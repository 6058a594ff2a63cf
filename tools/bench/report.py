"""Ratios within the run, the targets, and the table `make bench` prints."""

from __future__ import annotations

from .sizes import FASTSTREAM_BATCH

# The targets: (what, ratio or figure key, comparison, target).
TARGETS = [
    ("consumer: consumer.py vs tutorial loop", ("ratios", "consumer_vs_tutorial"), ">=", 60),
    ("consumer: consumer.py vs FastStream batch", ("ratios", "consumer_vs_faststream"), ">=", 2),
    ("producer: bulk vs tutorial loop", ("ratios", "producer_bulk_vs_tutorial"), ">=", 20),
    ("producer: bulk vs redis-benchmark ceiling", ("ratios", "producer_bulk_vs_redis_benchmark"), ">=", 0.3),
    ("latency at 1,000/s: p99 (ms)", ("latency_ms", "p99"), "<=", 10),
    ("one-shot producer.py (s)", ("producer", "one_shot_s"), "<=", 0.4),
    ("consumer peak RSS (MB)", ("memory", "peak_rss_mb"), "<=", 60),
]


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def with_ratios(results: dict) -> dict:
    p, c = results["producer"], results["consumer"]
    results["ratios"] = {
        "producer_bulk_vs_tutorial": ratio(p["bulk_per_s"], p["tutorial_per_s"]),
        "producer_bulk_wall_vs_tutorial": ratio(p["bulk_wall_per_s"], p["tutorial_per_s"]),
        "producer_bulk_vs_redis_benchmark": ratio(p["bulk_per_s"], p["redis_benchmark_per_s"]),
        "consumer_vs_tutorial": ratio(c["ours_per_s"], c["tutorial_per_s"]),
        "consumer_wall_vs_tutorial": ratio(c["ours_wall_per_s"], c["tutorial_per_s"]),
        "consumer_vs_faststream": ratio(c["ours_per_s"], c["faststream_batch_per_s"]),
        "consumer_wall_vs_faststream": ratio(c["ours_wall_per_s"], c["faststream_batch_per_s"]),
        "reads_only_vs_tutorial": ratio(c["reads_only_per_s"], c["tutorial_per_s"]),
    }
    results["targets"] = []
    for what, (section, key), op, target in TARGETS:
        value = results[section][key]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        results["targets"].append({"what": what, "measured": value, "target": f"{op} {target}", "met": met})
    return results


# -- the table --------------------------------------------------------------------------------------


def table(results: dict) -> str:
    p, c, lat, mem, r = (results[k] for k in ("producer", "consumer", "latency_ms", "memory", "ratios"))
    sz = results["meta"]["sizes"]

    def rate(v):
        return "skipped" if v is None else f"{v:,.0f}/s"

    def x(v):
        return "" if v is None else f"{v:.1f}x" if v >= 1 else f"{v:.2f}x"

    rows = [
        ("producer", "", ""),
        ("  tutorial: one XADD per round trip", rate(p["tutorial_per_s"]), "1x"),
        (
            f"  producer.py --count {sz['producer_bulk']:,} -q (start-up excluded)",
            rate(p["bulk_per_s"]),
            f"{x(r['producer_bulk_vs_tutorial'])} tutorial, {x(r['producer_bulk_vs_redis_benchmark'])} ceiling",
        ),
        (
            f"  same, wall clock ({p['bulk_wall_s']:.2f} s from process start to exit)",
            rate(p["bulk_wall_per_s"]),
            f"{x(r['producer_bulk_wall_vs_tutorial'])} tutorial",
        ),
        ("  redis-benchmark -c 1 -P 128 XADD (server ceiling)", rate(p["redis_benchmark_per_s"]), ""),
        ("  one `python producer.py sensor1`, start to exit", f"{p['one_shot_s']:.3f} s", ""),
        (f"consumer, {c['entries']:,} prefilled entries", "", ""),
        ("  tutorial: read COUNT 1 + one XACK per message", rate(c["tutorial_per_s"]), "1x"),
        (
            "  consumer.py GROUP CONSUMER --burst -q (start-up excluded)",
            rate(c["ours_per_s"]),
            f"{x(r['consumer_vs_tutorial'])} tutorial, {x(r['consumer_vs_faststream'])} FastStream",
        ),
        (
            f"  same, wall clock ({c['ours_wall_s']:.2f} s, of which start-up {c['ours_startup_s']:.2f} s)",
            rate(c["ours_wall_per_s"]),
            f"{x(r['consumer_wall_vs_tutorial'])} tutorial, {x(r['consumer_wall_vs_faststream'])} FastStream",
        ),
        (
            f"  FastStream StreamSub, group, batch=True, max_records={FASTSTREAM_BATCH}",
            rate(c["faststream_batch_per_s"]),
            "",
        ),
        (
            "  reference: XREADGROUP COUNT 500 NOACK only (no processing, no XACK)",
            rate(c["reads_only_per_s"]),
            f"{x(r['reads_only_vs_tutorial'])} tutorial",
        ),
        (f"latency at {lat['rate_per_s']:,}/s, consumer.py defaults", "", ""),
        (
            "  p50 / p99 / max",
            f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms",
            f"{lat['lost']} lost" if lat["lost"] else "",
        ),
        (
            f"consumer.py peak RSS, {mem['entries']:,} entries",
            f"{mem['peak_rss_mb']:.1f} MB",
            f"{mem['rss_early_mb']:.1f} MB after {mem['early_at_entries']:,}, {mem['rss_end_mb']:.1f} MB at the end",
        ),
    ]
    width = max(len(row[0]) for row in rows) + 2
    lines = [f"{what:<{width}}{fig:>22}   {rat}".rstrip() for what, fig, rat in rows]
    lines.append("")
    lines.append("targets")
    for t in results["targets"]:
        mark = "skipped" if t["met"] is None else "met" if t["met"] else "NOT met"
        shown = "-" if t["measured"] is None else f"{t['measured']:.3g}"
        lines.append(f"  {t['what']:<{width - 2}}{shown:>22}   {t['target']:<7} {mark}")
    for what, why in results["skipped"].items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)
