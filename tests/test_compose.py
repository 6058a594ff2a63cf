"""docker-compose.yml, the Dockerfile and .dockerignore, checked on a machine without Docker.

What can be checked without a Docker engine is checked for real: the Compose file against the
Compose Specification (check-jsonschema's copy of its JSON schema), the Dockerfile with hadolint,
every command a service runs through the script's own Click parser, and the consumer's entrypoint
with this machine's sh and getent. What cannot be checked here: building the image, starting the
containers, and Docker's DNS answering the consumer's name lookup.

ruamel.yaml comes with check-jsonschema (it is what check-jsonschema reads YAML with).
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BIN = Path(sys.executable).parent
SCRIPT_SERVICES = ("producer", "consumer")
# Run in place of `python`: prints the arguments it was given and its own process ID.
SHOW_ARGV = "import json, os, sys; print(json.dumps({'pid': os.getpid(), 'argv': sys.argv[1:]}))"


def load(path: Path | None = None) -> dict:
    return YAML(typ="safe").load((path or COMPOSE).read_text())


def dump(data: dict, path: Path) -> Path:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False  # (ruamel's own parser refuses `{METRICS_ADDRESS: :9102}`, its flow style)
    yaml.dump(data, path)
    return path


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def unescape(value: str) -> str:
    """The string as Compose passes it on: `$$` is a literal `$`; a lone `$` would be substituted."""
    if "$" in value.replace("$$", ""):
        raise AssertionError(f"Compose would substitute a variable in {value!r}; write $$ for a literal $")
    return value.replace("$$", "$")


def strings(node):
    """Every string in a loaded YAML document, keys and values."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def run_entrypoint(service: dict, command: list[str], hostname: str) -> subprocess.CompletedProcess:
    """The service's entrypoint, run here by sh with `command` after it, as Docker would."""
    entrypoint = [unescape(part) for part in service["entrypoint"]]
    return subprocess.run(
        [*entrypoint, *command],
        env={"HOSTNAME": hostname, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def container_argv(service: dict, hostname: str = "c0ffee123456") -> list[str]:
    """What the container's process gets: the command, after the entrypoint (if any) ran."""
    command = [unescape(part) for part in service["command"]]
    if "entrypoint" not in service:
        return command
    got = run_entrypoint(service, [sys.executable, "-c", SHOW_ARGV, *command[1:]], hostname)
    assert got.returncode == 0, got.stderr
    return [command[0], *json.loads(got.stdout)["argv"]]


def click_context(script: str, args: list[str], env: dict, monkeypatch) -> click.Context:
    """Parse `python <script> <args>` with the script's Click command, without running it.

    Subcommands of a group (admin.py info) are parsed too. Raises click.UsageError (or
    BadParameter) for what the script would refuse at start-up.
    """
    command = importlib.import_module(Path(script).stem).main
    envvars = {p.envvar for p in command.params if isinstance(getattr(p, "envvar", None), str)}
    for name in envvars - set(env):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    ctx = command.make_context(script, list(args))
    while isinstance(ctx.command, click.Group):
        with warnings.catch_warnings():  # Click 8.2-8.x keeps the subcommand in protected_args
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", []), *ctx.args]
        name, sub, rest = ctx.command.resolve_command(ctx, rest)
        ctx = sub.make_context(name, rest, parent=ctx)
    return ctx


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in joined.splitlines()
        if line.strip()
    ]


def final_stage(instructions):
    start = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[start:]


def in_image(names) -> set[str]:
    """Which of these paths .dockerignore lets into the build context.

    As Docker reads it: a rule matches a path or any folder above it, and the last rule that
    matches wins.
    """
    rules = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    kept = set()
    for name in names:
        parts = Path(name).parts
        above = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        keep = True
        for rule in rules:
            pattern = rule.lstrip("!")
            if any(
                fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.removeprefix("**/"))
                for path in above
            ):
                keep = rule.startswith("!")
        if keep:
            kept.add(name)
    return kept


def module_file(name: str) -> str | None:
    """The repository's file for a module name (a package is its __init__.py); None if not ours."""
    path = ROOT / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return str((path / "__init__.py").relative_to(ROOT))
    if path.with_suffix(".py").is_file():
        return str(path.with_suffix(".py").relative_to(ROOT))
    return None


def local_imports(script: str) -> set[str]:
    """The repository's own files a script needs, directly or through each other (packages too)."""
    needed, todo = set(), [script]
    while todo:
        file = todo.pop()
        tree = ast.parse((ROOT / file).read_text())
        package = ".".join(Path(file).parent.parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # from .x import y / from .. import z, inside a package
                    up = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                    base = ".".join([*up, *([base] if base else [])])
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]  # a name may be a module
            else:
                continue
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a module needs every package above it
                    found = module_file(".".join(parts[:i]))
                    if found and found not in needed:
                        needed.add(found)
                        todo.append(found)
    return needed


def bind_mounts(compose: dict) -> list[str]:
    """Every service volume that is not one of the file's named volumes."""
    named = set(compose.get("volumes") or {})
    found = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type", "volume") != "volume" or volume.get("source") not in named:
                    found.append(f"{name}: {volume}")
            elif volume.split(":")[0] not in named:
                found.append(f"{name}: {volume}")
    return found


# -- the Compose file --------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification():
    checked = validate(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "mutation",
    [
        "misspelled healthcheck",
        "unknown depends_on condition",
        "command of the wrong type",
        "unknown top-level key",
    ],
)
def test_the_validator_rejects_a_broken_compose_file(mutation, tmp_path):
    compose = load()
    unchanged = validate(dump(compose, tmp_path / "unchanged.yml"))
    assert unchanged.returncode == 0, unchanged.stdout  # what is rejected below is the mutation alone
    if mutation == "misspelled healthcheck":
        compose["services"]["redis"]["healtcheck"] = compose["services"]["redis"].pop("healthcheck")
    elif mutation == "unknown depends_on condition":
        compose["services"]["consumer"]["depends_on"]["redis"]["condition"] = "service_ready"
    elif mutation == "command of the wrong type":
        compose["services"]["producer"]["command"] = {"python": "producer.py"}
    else:
        compose["service"] = compose.pop("services")
    rejected = validate(dump(compose, tmp_path / "broken.yml"))
    assert rejected.returncode != 0
    assert "Schema validation errors" in rejected.stdout + rejected.stderr


def test_compose_substitutes_no_variable():
    """A `$` meant for the container's shell must be `$$`, or Compose puts its own value there."""
    for value in strings(load()):
        unescape(value)
    with pytest.raises(AssertionError, match="substitute"):
        unescape('exec "$@" "$name"')


def test_redis_7_pinned_with_aof_on_a_named_volume_and_a_health_check():
    compose = load()
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7\.\d+\.\d+(-[a-z0-9.]+)?", redis["image"]), redis["image"]
    assert "--appendonly yes" in " ".join(redis["command"])
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in compose["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    # Published for the host's scripts, on loopback only: this Redis has no password.
    assert all(port.startswith("127.0.0.1:") for port in redis.get("ports", []))


def test_no_host_bind_mounts():
    compose = load()
    assert bind_mounts(compose) == []
    compose["services"]["redis"]["volumes"].append("./data:/data")
    compose["services"]["consumer"]["volumes"] = [{"type": "bind", "source": ".", "target": "/app"}]
    assert len(bind_mounts(compose)) == 2


def test_the_scripts_wait_for_a_healthy_redis_and_come_back():
    services = load()["services"]
    for name in SCRIPT_SERVICES:
        service = services[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0", name
        assert service["build"] == "." and service["restart"] in ("always", "unless-stopped"), name


# -- the commands the services run -------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPT_SERVICES)
def test_every_command_is_a_script_of_the_image_with_options_it_accepts(name, monkeypatch):
    service = load()["services"][name]
    program, script, *args = container_argv(service)
    assert program == "python"
    assert (ROOT / script).is_file(), f"{name} runs {script}, which is not in the repository"
    assert script in in_image([script]), f"{script} is kept out of the image by .dockerignore"
    ctx = click_context(script, args, service["environment"], monkeypatch)
    assert ctx.params["redis_url"] == "redis://redis:6379/0"
    assert ctx.params["stream"] == service["environment"]["STREAM_KEY"]
    if name == "producer":
        assert ctx.params["count"] == 0 and ctx.params["interval"] > 0  # publishes until stopped
    else:
        assert ctx.params["group"] == "group1" and ctx.params["consumer"] == "c0ffee123456"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("producer.py", ["sensor1", "--intervall", "0.5"]),
        ("producer.py", ["sensor1", "--count", "-1"]),
        ("consumer.py", ["group1", "--start-from", "0"]),  # no CONSUMER: what the entrypoint adds
        ("consumer.py", ["group1", "--start-from", "yesterday", "c1"]),
    ],
)
def test_the_click_check_rejects_what_a_script_would_refuse(script, args, monkeypatch):
    with pytest.raises(click.UsageError):
        click_context(script, args, {"REDIS_URL": "redis://redis:6379/0"}, monkeypatch)


def test_the_monitoring_services(monkeypatch):
    """admin-metrics runs `admin.py metrics --serve` with options it accepts, on the scripts' image,
    after a healthy Redis; Prometheus and Grafana are pinned images published on loopback only."""
    services = load()["services"]
    exporter = services["admin-metrics"]
    program, script, *args = container_argv(exporter)
    assert (program, script) == ("python", "admin.py")
    ctx = click_context(script, args, exporter["environment"], monkeypatch)
    assert ctx.info_name == "metrics" and ctx.params["serve"] == ":9103"
    assert ctx.params["streams"] == (exporter["environment"]["STREAM_KEY"],)
    assert exporter["build"] == "." and exporter["depends_on"]["redis"]["condition"] == "service_healthy"
    for name, image in (
        ("prometheus", r"prom/prometheus:v\d+\.\d+\.\d+"),
        ("grafana", r"grafana/grafana:\d+\.\d+\.\d+"),
    ):
        assert re.fullmatch(image, services[name]["image"]), services[name]["image"]
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
        assert services[name]["configs"], name  # monitoring/'s files (tests/test_monitoring.py checks them)


def test_consumer_entrypoint_appends_a_name_and_execs_the_command():
    """Here getent finds no address for a container ID, as it would if Docker's DNS did not
    answer, so the fallback is what runs: the ID itself. The DNS answer (the container's name,
    redis-streams-consumer-<n>) needs Docker's DNS and is not checked here."""
    service = load()["services"]["consumer"]
    shown = [sys.executable, "-c", SHOW_ARGV, "group1", "--start-from", "0"]
    process = subprocess.Popen(
        [*(unescape(p) for p in service["entrypoint"]), *shown],
        env={"HOSTNAME": "c0ffee123456", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    got = json.loads(out)
    assert got["argv"] == ["group1", "--start-from", "0", "c0ffee123456"]
    # exec: Python replaces the shell, so `docker stop`'s SIGTERM reaches the consumer itself.
    assert got["pid"] == process.pid
    assert "consumer name c0ffee123456" in err
    # Distinct per container, the same on every start of the same container.
    names = [container_argv(service, hostname)[-1] for hostname in ("c0ffee123456", "0ddba11c0ffe", "c0ffee123456")]
    assert names == ["c0ffee123456", "0ddba11c0ffe", "c0ffee123456"]


# -- the image ---------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    linted = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda text: re.sub(r"(?m)^FROM \S+", "FROM python:latest", text), "DL3007"),
        (lambda text: text + "USER root\n", "DL3002"),
    ],
)
def test_hadolint_rejects_a_latest_base_or_a_root_user(change, rule, tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(change(DOCKERFILE.read_text()))
    linted = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert linted.returncode != 0 and rule in linted.stdout


def test_dockerfile_slim_pinned_python_non_root_requirements_and_no_build_tools():
    stage = final_stage(dockerfile_instructions(DOCKERFILE.read_text()))
    base = stage[0][1]
    pinned = re.fullmatch(r"python:3\.(\d+)\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base)
    assert pinned and int(pinned.group(1)) >= 11, f"base image {base!r}: want python:3.1x.y-slim..."
    users = [args for name, args in stage if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the scripts must not run as root"
    uid = users[-1].split(":")[0]
    assert any(name == "RUN" and "useradd" in args and f"--uid {uid}" in args for name, args in stage)
    runs = " ".join(args for name, args in stage if name == "RUN")
    assert ("COPY", "requirements.txt .") in stage
    assert re.search(r"pip install .*-r requirements\.txt", runs)
    assert "--only-binary=:all:" in runs  # a dependency without a wheel fails the build, never compiles
    assert not re.search(r"apt-get|apk add|gcc|build-essential", runs)


def test_the_image_gets_every_module_the_scripts_import():
    scripts = {container_argv(service)[1] for name, service in load()["services"].items() if name in SCRIPT_SERVICES}
    scripts.add("admin.py")  # the README's `docker compose exec consumer python admin.py ...`
    needed = set(scripts).union(*(local_imports(script) for script in scripts))
    assert needed <= in_image(needed), f"kept out of the image by .dockerignore: {needed - in_image(needed)}"
    assert "requirements.txt" in in_image(["requirements.txt"])
    assert not in_image(
        ["demo.py", "story", "tools/bench/measure.py", "Makefile", "README.md", ".venv", ".git", "tests"]
    )
    assert not in_image(["stream_pubsub/__pycache__/group.cpython-311.pyc"])
    # the import walk finds modules, through the package's own relative imports too
    assert {"config.py", "stream_pubsub/__init__.py", "stream_pubsub/reading.py"} <= local_imports("consumer.py")


# -- the README --------------------------------------------------------------------------------


def readme_compose_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Docker Compose\n", 1)[1].split("\n## ", 1)[0]
    return [line.split("#")[0].split() for line in section.splitlines() if line.startswith("docker compose ")]


def test_readme_compose_commands_name_real_services_and_scripts(monkeypatch):
    compose = load()
    commands = readme_compose_commands()
    assert commands, "the README's Docker Compose section shows no `docker compose` command"
    for words in commands:
        for word in words:
            if "=" in word and not word.startswith("-"):
                assert word.split("=")[0] in compose["services"], words  # --scale consumer=3
        if words[2] in ("exec", "logs", "restart", "stop"):
            service = next(w for w in words[3:] if not w.startswith("-"))
            assert service in compose["services"], words
        if words[2] == "exec" and "python" in words:
            script, *args = words[words.index("python") + 1 :]
            assert (ROOT / script).exists(), f"the README runs {script}, which is not in the repository: {words}"
            click_context(script, args, compose["services"][service]["environment"], monkeypatch)


def test_producer_and_consumer_share_one_image_and_one_stream():
    services = load()["services"]
    shared = ("build", "image", "environment", "depends_on", "restart")

    def settings(name):  # each serves its metrics on a port of its own (test_the_scripts_serve_their_metrics...)
        service = {key: services[name][key] for key in shared}
        return {**service, "environment": {k: v for k, v in service["environment"].items() if k != "METRICS_ADDRESS"}}

    assert settings("producer") == settings("consumer")


def test_the_scripts_serve_their_metrics_where_prometheus_scrapes_them(monkeypatch):
    """METRICS_ADDRESS of each script's service is the port monitoring/prometheus.yml scrapes it on,
    and the script takes it (the producer runs on: --count 0), so Prometheus's targets are up."""
    services = load()["services"]
    prometheus = load(ROOT / "monitoring" / "prometheus.yml")
    ports = {job["job_name"]: job["dns_sd_configs"][0]["port"] for job in prometheus["scrape_configs"][1:]}
    for name, job in (("producer", "stream-pubsub-producers"), ("consumer", "stream-pubsub-consumers")):
        service = services[name]
        assert service["environment"]["METRICS_ADDRESS"] == f":{ports[job]}", name
        program, script, *args = container_argv(service)
        ctx = click_context(script, args, service["environment"], monkeypatch)
        assert ctx.params["metrics"] == f":{ports[job]}", name
        assert name == "consumer" or ctx.params["count"] == 0
    assert "METRICS_ADDRESS" not in services["admin-metrics"]["environment"]
