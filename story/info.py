"""Step 6: `admin.py info`, and the tally: every reading processed once, nothing pending, nothing lost."""

from __future__ import annotations

from .stage import Demo, StepFailed


def info(demo: Demo) -> None:
    demo.begin("info", "`admin.py info`: nothing pending, nothing lost")
    info = demo.run("info", "admin.py", "info")
    demo.show(info.stdout(), limit=30)
    g, stream = demo.group(), demo.r.xinfo_stream(demo.stream)
    processed, dead = demo.processed(), demo.r.xlen(demo.dlq)
    added = stream.get("entries-added", len(demo.sent) + 1)  # Redis 7.0+ counts every XADD
    missing, twice = set(demo.sent) - set(processed), len(processed) - len(set(processed))
    if g["pending"] or missing or twice or dead != 1 or added != len(demo.sent) + 1 or g.get("lag"):
        raise StepFailed(
            f"pending {g['pending']}, lag {g.get('lag')}, {len(missing)} of {len(demo.sent)} "
            f"readings never processed, {twice} processed twice, {dead} dead letters "
            f"(expected 1), {added} entries added (expected {len(demo.sent) + 1})"
        )
    demo.ok(
        f"{added} entries added: {len(demo.sent)} readings all processed once (c1 "
        f"{len(demo.processed_by('c1'))}, c2 {len(demo.processed_by('c2'))}), 1 poison reading "
        f"dead-lettered on purpose; 0 pending, lag 0: nothing lost"
    )
