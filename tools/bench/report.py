"""Ratios within the run, the targets, and the table `make bench` prints."""

from __future__ import annotations

import statistics

from .sizes import FASTSTREAM_BATCH

# The targets: (what, ratio or figure key, comparison, target).
TARGETS = [
    ("consumer: consumer.py wall clock vs reads-only ceiling", ("ratios", "consumer_wall_vs_reads_only"), ">=", 0.45),
    ("consumer: no-op --handler vs default path", ("ratios", "handler_vs_consumer_wall"), ">=", 0.8),
    ("consumer: --metrics on vs off", ("ratios", "metrics_vs_consumer_wall"), ">=", 0.9),
    # The tutorial ratio is kept as a floor, not as the goal. The tutorial loop runs at the loopback's
    # round-trip speed, which the machine's load moves both ways (3,050-3,270/s in the runs;
    # 4,000-8,000/s on a busy machine, whose cores never idle): the goal is the ceiling ratio above,
    # which the load cannot move. The issue puts what this stack allows at 45x-50x (0.45x a ceiling
    # near 100x a quiet machine's tutorial loop); 40 leaves room for noise there, and says NOT met
    # where the loop runs fast, which the ceiling ratio then tells apart from a slow consumer.
    ("consumer: consumer.py wall clock vs tutorial loop", ("ratios", "consumer_wall_vs_tutorial"), ">=", 40),
    ("consumer: consumer.py vs FastStream batch", ("ratios", "consumer_vs_faststream"), ">=", 2),
    ("producer: bulk vs tutorial loop", ("ratios", "producer_bulk_vs_tutorial"), ">=", 20),
    ("producer: bulk vs redis-benchmark ceiling", ("ratios", "producer_bulk_vs_redis_benchmark"), ">=", 0.3),
    ("latency at 1,000/s: p99 (ms)", ("latency_ms", "p99"), "<=", 10),
    ("one-shot producer.py (s)", ("producer", "one_shot_s"), "<=", 0.4),
    ("consumer peak RSS (MB)", ("memory", "peak_rss_mb"), "<=", 60),
    # What sharding costs, every server on the same cores (the cluster cannot be faster here).
    ("cluster: producer, 3 masters / 12 shards vs single node", ("ratios", "cluster_producer_vs_single"), ">=", 0.7),
    ("cluster: consumer, 3 masters / 12 shards vs single node", ("ratios", "cluster_consumer_vs_single"), ">=", 0.7),
    ("handlers: --concurrency 32 vs bare ThreadPoolExecutor(32)", ("handlers", "threads_vs_bare"), ">=", 0.75),
    ("handlers: async --concurrency 100 vs bare asyncio loop", ("handlers", "async_vs_bare"), ">=", 0.6),
    ("handlers: --order-by sensor_id vs --order-by ''", ("handlers", "ordered_vs_unordered"), ">=", 0.7),
]

# Ratios taken run by run, between runs made next to each other: ratio -> (numerator, denominator),
# names of per_run_rates. The ratio reported (and held to its target) is the median of the pairs.
PAIRED = {
    "consumer_wall_vs_reads_only": ("ours", "ceiling"),
    "handler_vs_consumer_wall": ("handler", "ours"),
    "metrics_vs_consumer_wall": ("metrics", "ours"),
    "consumer_wall_vs_tutorial": ("ours", "tutorial"),
}


# The cluster's ratios, pair by pair: ratio -> (the cluster's runs, the single node's), wall times of
# the same readings on both sides, so a pair's ratio of rates is single node wall / cluster wall.
CLUSTER_PAIRED = {
    "cluster_producer_vs_single": ("cluster_producer_wall_s", "cluster_single_producer_wall_s"),
    "cluster_consumer_vs_single": ("cluster_consumer_wall_s", "cluster_single_consumer_wall_s"),
}


def per_run_rates(runs: dict, entries: int) -> dict[str, list[float]]:
    """The consumer's rate in each run: ours and the handler's on the wall clock, start to exit."""
    return {
        "ours": [entries / wall for wall in runs["consumer_wall_s"]],
        "handler": [entries / wall for wall in runs["handler_wall_s"]],
        "metrics": [entries / wall for wall in runs["metrics_wall_s"]],
        "ceiling": runs["reads_only_per_s"],
        "tutorial": runs["consumer_tutorial_per_s"],
    }


def paired(runs: dict, entries: int) -> dict:
    rates = per_run_rates(runs, entries)
    out = {}
    for name, (a, b) in PAIRED.items():
        out[name] = spread([x / y for x, y in zip(rates[a], rates[b], strict=True)])
    for name, (cluster, single) in CLUSTER_PAIRED.items():  # none when the cluster was skipped
        pairs = [s / c for c, s in zip(runs[cluster], runs[single], strict=True)]
        out[name] = spread(pairs) if pairs else None
    return out


def spread(pairs: list[float]) -> dict:
    return {"median": statistics.median(pairs), "min": min(pairs), "max": max(pairs), "per_pair": pairs}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def with_ratios(results: dict) -> dict:
    p, c = results["producer"], results["consumer"]
    results["paired"] = paired(results["runs"], c["entries"])
    results["ratios"] = {
        "producer_bulk_vs_tutorial": ratio(p["bulk_per_s"], p["tutorial_per_s"]),
        "producer_bulk_wall_vs_tutorial": ratio(p["bulk_wall_per_s"], p["tutorial_per_s"]),
        "producer_bulk_vs_redis_benchmark": ratio(p["bulk_per_s"], p["redis_benchmark_per_s"]),
        **{name: figures and figures["median"] for name, figures in results["paired"].items()},
        "consumer_vs_tutorial": ratio(c["ours_per_s"], c["tutorial_per_s"]),
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

    def px(name):  # a paired ratio: the median, and the range of the pairs when there are several
        figures = results["paired"][name]
        if figures is None:
            return ""
        spread = f" ({x(figures['min'])[:-1]}-{x(figures['max'])})" if len(figures["per_pair"]) > 1 else ""
        return x(figures["median"]) + spread

    runs = len(results["runs"]["consumer_wall_s"])
    pairs_note = f"; paired ratios: median (min-max) of {runs} pairs" if runs > 1 else ""

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
        (f"consumer, {c['entries']:,} prefilled entries{pairs_note}", "", ""),
        ("  tutorial: read COUNT 1 + one XACK per message", rate(c["tutorial_per_s"]), "1x"),
        (
            "  ceiling: XREADGROUP COUNT 500 NOACK only (no processing, no XACK)",
            rate(c["reads_only_per_s"]),
            f"{x(r['reads_only_vs_tutorial'])} tutorial",
        ),
        (
            f"  consumer.py GROUP c1 --start-from 0 --burst -q, wall clock ({c['ours_wall_s']:.2f} s)",
            rate(c["ours_wall_per_s"]),
            f"{px('consumer_wall_vs_reads_only')} ceiling, {px('consumer_wall_vs_tutorial')} tutorial"
            + (f", {x(r['consumer_wall_vs_faststream'])} FastStream" if c["faststream_batch_per_s"] else ""),
        ),
        (
            f"  same, start-up excluded ({c['ours_startup_s']:.2f} s of it)",
            rate(c["ours_per_s"]),
            f"{x(r['consumer_vs_tutorial'])} tutorial, {x(r['consumer_vs_faststream'])} FastStream",
        ),
        (
            f"  same + --handler noop:process (does nothing), wall clock ({c['handler_wall_s']:.2f} s)",
            rate(c["handler_wall_per_s"]),
            f"{px('handler_vs_consumer_wall')} default path",
        ),
        (
            f"  same + --metrics (served, not scraped), wall clock ({c['metrics_wall_s']:.2f} s)",
            rate(c["metrics_wall_per_s"]),
            f"{px('metrics_vs_consumer_wall')} default path",
        ),
        (
            f"  FastStream StreamSub, group, batch=True, max_records={FASTSTREAM_BATCH}",
            rate(c["faststream_batch_per_s"]),
            "",
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
        *cluster_rows(results, rate, px),
        *handler_rows(results["handlers"], rate, x),
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


def cluster_rows(results: dict, rate, px) -> list[tuple[str, str, str]]:
    """The cluster row: the producers, then the consumer; on the single node, on the cluster, per master."""
    cl, cpus = results["cluster"], results["meta"]["cpus"]
    masters, shards, producers, per = cl["masters"], cl["shards"], cl["producers"], cl["producers_per_master"]
    pairs = len(results["runs"]["cluster_producer_wall_s"])

    def wall(key):
        return "" if cl[key] is None else f" ({cl[key]:.2f} s)"

    per_master = f"    per master: cluster / {masters}, what one master did here"
    one = "" if cl["single_producer_per_s"] is None else "1x"

    def vs_single(name):
        return "" if results["paired"][name] is None else f"{px(name)} single node"

    return [
        (
            f"cluster: {masters} masters (no replicas), {shards} shards, on the same {cpus} cores",
            "",
            f"paired ratios: median (min-max) of {pairs} pairs" if pairs > 1 else "",
        ),
        (
            f"  producer: {cl['producer_readings']:,} readings, {producers} x producer.py SENSOR "
            f"--count {cl['producer_readings'] // producers:,} -q at once",
            "",
            "",
        ),
        ("    single node, 1 stream" + wall("single_producer_wall_s"), rate(cl["single_producer_per_s"]), one),
        (
            f"    {masters} masters, --shards {shards}, {per} sensor{'s' * (per != 1)} a master"
            + wall("producer_wall_s"),
            rate(cl["producer_per_s"]),
            vs_single("cluster_producer_vs_single"),
        ),
        (per_master, rate(cl["producer_per_master_per_s"]), ""),
        (
            f"  consumer: {cl['consumer_entries']:,} entries, one consumer.py GROUP c1 --start-from 0 --burst -q",
            "",
            "",
        ),
        ("    single node, 1 stream" + wall("single_consumer_wall_s"), rate(cl["single_consumer_per_s"]), one),
        (
            f"    {masters} masters, {shards} shards, its group on each" + wall("consumer_wall_s"),
            rate(cl["consumer_per_s"]),
            vs_single("cluster_consumer_vs_single"),
        ),
        (per_master, rate(cl["consumer_per_master_per_s"]), ""),
    ]


def handler_rows(h: dict, rate, x) -> list[tuple[str, str, str]]:
    """Real handlers: a handler that waits 10 ms, many at once, against Python's own."""
    return [
        (f"handlers, 10 ms each, {h['threads_entries']:,} entries over 1,000 sensors, wall clock", "", ""),
        ("  bare ThreadPoolExecutor(32).map", rate(h["bare_threads_per_s"]), "1x"),
        ("  consumer.py --concurrency 32", rate(h["threads_per_s"]), f"{x(h['threads_vs_bare'])} bare pool"),
        ("  same, --order-by ''", rate(h["unordered_per_s"]), f"ordered {x(h['ordered_vs_unordered'])} this"),
        (f"  bare asyncio loop, 100 at a time ({h['async_entries']:,} entries)", rate(h["bare_async_per_s"]), "1x"),
        ("  consumer.py --concurrency 100, async def", rate(h["async_per_s"]), f"{x(h['async_vs_bare'])} bare loop"),
    ]
