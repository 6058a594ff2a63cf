"""The layout a newcomer reads: the scripts at the top, the machinery in one package that stands alone."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys

from conftest import ROOT

SCRIPTS = {"producer.py", "consumer.py", "admin.py", "demo.py", "config.py"}
PACKAGE = ROOT / "stream_pubsub"


def source_files():
    ignored = {".venv", ".git", "tests", "__pycache__"}
    return [p for p in ROOT.rglob("*.py") if not ignored & set(p.relative_to(ROOT).parts)]


def imported_names(path) -> set[str]:
    """Every absolute module name a file imports (relative imports stay inside its package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_scripts_and_config_at_the_root():
    assert {p.name for p in ROOT.glob("*.py")} == SCRIPTS


def test_files_a_reader_can_hold_in_their_head():
    too_long = {}
    for path in source_files():
        lines = len(path.read_text().splitlines())
        limit = 400  # past what a reader holds in their head: split it by idea
        if lines > limit:
            too_long[str(path.relative_to(ROOT))] = (lines, limit)
    assert not too_long, f"lines over the limit (lines, limit): {too_long}"


def test_the_package_imports_nothing_from_the_root():
    ours = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()} - {"stream_pubsub"}
    for path in PACKAGE.rglob("*.py"):
        assert not imported_names(path) & ours, f"{path.relative_to(ROOT)} imports {imported_names(path) & ours}"


def test_the_package_imports_alone(tmp_path):
    """Copied where no script or config.py is, every module of it still imports."""
    shutil.copytree(PACKAGE, tmp_path / "stream_pubsub", ignore=shutil.ignore_patterns("__pycache__"))
    modules = sorted(
        ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__")
        for p in (tmp_path / "stream_pubsub").rglob("*.py")
    )
    code = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\nprint(len({modules!r}))"
    done = subprocess.run([sys.executable, "-E", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(modules) >= 15


def test_the_package_index_names_every_module():
    """stream_pubsub/__init__.py lists its modules: a newcomer's map must not miss one."""
    index = (PACKAGE / "__init__.py").read_text()
    listed = set(re.findall(r"^    (\w+\.py|\w+/) ", index, re.M))
    present = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py"} | {
        f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    }
    assert listed == present


def test_the_readme_names_places_that_exist():
    """Each file and each `Class.method` the README points a reader to is really there."""
    readme = (ROOT / "README.md").read_text()
    for path in set(re.findall(r"`((?:stream_pubsub|story|tools|examples|tests)/[\w/]+\.py)`", readme)):
        assert (ROOT / path).is_file(), path
    sources = {p: p.read_text() for p in source_files()}
    for owner, name in set(re.findall(r"`([A-Z]\w+)\.(\w+)`", readme)):
        if owner in {"Consumer", "GroupStream", "Publisher", "ReadAhead", "Keeper", "Processor"}:
            assert any(
                re.search(rf"^class {owner}\b[\s\S]*?^    def {name}\(", text, re.M) for text in sources.values()
            ), f"{owner}.{name}"
    functions = re.findall(r"`(\w+)` in `\w+\.py`", readme) + re.findall(r"`(\w+)` \(`stream_pubsub/", readme)
    for name in set(functions):
        assert any(re.search(rf"^\s*(def|class) {name}\b", text, re.M) for text in sources.values()), name


def test_the_readme_contents_list_every_chapter():
    """The README's contents at the top name every chapter, in order, with a link that works."""
    readme = (ROOT / "README.md").read_text()
    chapters = [t for t in re.findall(r"^## (.+)$", readme, re.M) if t != "Contents"]
    listed = re.findall(r"^- \[(.+)\]\(#(.+)\)$", readme.split("## Contents", 1)[1].split("\n## ", 1)[0], re.M)
    assert [title for title, _ in listed] == chapters
    for title, link in listed:
        assert link == re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def test_the_scripts_help_says_where_the_number_of_shards_comes_from():
    """--shards has no fixed default: the number Redis recorded for the stream, else 1."""
    for script in ("producer.py", "consumer.py"):
        done = subprocess.run([sys.executable, str(ROOT / script), "-h"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "[default: what Redis recorded for the stream; 1 if nothing]" in " ".join(done.stdout.split())
        assert "[default: 1]" not in " ".join(done.stdout.split())
