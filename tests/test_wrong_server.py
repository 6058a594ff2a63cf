"""Something answers, but not what the URL says: a plain Redis behind rediss://, another service on
the port, a read-only replica. Each is named for what it is, in one line, instead of a message that
points the wrong way ("cannot reach Redis ... start one", "Protocol error", "read only replica").
"""

from __future__ import annotations

import gzip
import socket
import threading
import time

import pytest
import redis
import redis.exceptions as rex
from conftest import run, wait_for
from test_errors import one_error_line

from stream_pubsub.connection import SOCKET_TIMEOUT, Connection

# How each script is run here: the tutorial's commands (the consumer as a batch) and admin.py's first.
SCRIPTS = {
    "producer.py": ["sensor1"],
    "consumer.py": ["group1", "c1", "--burst"],
    "admin.py": ["info"],
}


# -- rediss:// to a server without TLS ---------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPTS)
def test_rediss_to_a_plain_server_says_tls_and_does_not_wait_for_the_socket_timeout(r, server, name):
    url = f"rediss://:s3cret@127.0.0.1:{server.port}/0"

    started = time.monotonic()
    got = run(name, *SCRIPTS[name], url=url)
    took = time.monotonic() - started

    line = one_error_line(got)
    assert line == (
        f"Error: Redis at 127.0.0.1:{server.port} did not answer TLS (rediss://): is it a plain redis:// server?"
    )
    # The handshake is bounded by the connect timeout (2 s), no longer by the socket timeout (5 s,
    # 7 s for the consumer) that it took before, every time.
    assert took < SOCKET_TIMEOUT
    assert "s3cret" not in got.stderr
    assert r.dbsize() == 0


def test_rediss_with_nothing_listening_is_still_cannot_reach(r, server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    got = run("producer.py", "sensor1", url=f"rediss://127.0.0.1:{port}/0")

    one_error_line(got, f"cannot reach Redis at 127.0.0.1:{port}", "make redis")
    assert r.dbsize() == 0


# -- another service on the port -------------------------------------------------------------


class Impostor:
    """A TCP server on loopback that answers whatever it is sent with `reply`, then hangs up."""

    def __init__(self, reply: bytes):
        self.reply, self.heard = reply, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.heard.append(conn.recv(4096))
                    conn.sendall(self.reply)
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(4096)  # until the client hangs up
                except OSError:
                    pass

    def close(self):
        self.sock.close()


REPLIES = {
    "gzip": gzip.compress(b"<html>not redis</html>"),
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
}


@pytest.fixture(params=REPLIES, ids=list(REPLIES))
def impostor(request):
    service = Impostor(REPLIES[request.param])
    yield service
    service.close()


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_port_that_is_not_redis_is_named_another_service(impostor, name):
    got = run(name, *SCRIPTS[name], url=f"redis://:s3cret@127.0.0.1:{impostor.port}/0")

    line = one_error_line(got)
    assert line == (
        f"Error: 127.0.0.1:{impostor.port} does not speak the Redis protocol (is it another service? check --redis-url)"
    )
    assert "Protocol error" not in got.stderr and "s3cret" not in got.stderr
    # It was sent a Redis command (HELLO, or PING) and answered with something else.
    assert impostor.heard and impostor.heard[0].startswith(b"*")


# -- a read-only replica ----------------------------------------------------------------------


def replica_of(own_server, master):
    replica = own_server("--replicaof", "127.0.0.1", str(master.port))
    client = redis.Redis(port=replica.port)
    wait_for(lambda: client.info("replication").get("master_link_status") == "up", what="the replica to sync")
    return replica, client


@pytest.mark.parametrize(("name", "args"), [("producer.py", ["s1"]), ("consumer.py", ["g", "c", "--burst"])])
def test_a_read_only_replica_is_named_with_its_master(own_server, name, args):
    master = own_server()
    primary = redis.Redis(port=master.port)
    first = primary.xadd("app:event", {"sensor_id": "s0", "temp": "0.1", "humidity": "0.2"})
    replica, client = replica_of(own_server, master)
    wait_for(lambda: client.xlen("app:event") == 1, what="the entry on the replica")

    got = run(name, *args, url=replica.url)

    assert one_error_line(got) == (
        f"Error: Redis at 127.0.0.1:{replica.port} is a read-only replica of 127.0.0.1:{master.port}: "
        "point --redis-url at the master"
    )
    assert [entry_id for entry_id, _ in primary.xrange("app:event")] == [first]
    assert primary.xinfo_groups("app:event") == []  # no group was created anywhere
    assert client.xlen("app:event") == 1


def test_a_replica_that_refuses_info_is_still_named_a_replica(own_server):
    master = own_server()
    replica, client = replica_of(own_server, master)
    client.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-info")

    got = run("producer.py", "s1", url=f"redis://app:pw@127.0.0.1:{replica.port}/0")

    assert one_error_line(got) == (
        f"Error: Redis at 127.0.0.1:{replica.port} is a read-only replica: point --redis-url at the master"
    )
    assert redis.Redis(port=master.port).dbsize() == 0 and client.dbsize() == 0


# -- an error inside a pipeline ---------------------------------------------------------------


def test_describe_drops_the_pipeline_prefix_and_the_command_it_quotes(server):
    connection = Connection(server.url)
    where = f"127.0.0.1:{server.port}"
    wrongtype = rex.ResponseError(
        "Command # 1 (XADD app:event * sensor_id s1 temp 0.25 humidity 0.5) of pipeline caused error: "
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    other = rex.ResponseError(
        "Command # 2 (XADD app:event * note two\nlines) of pipeline caused error: The ID specified in XADD is "
        "equal or smaller than the target stream top item"
    )
    readonly = rex.ReadOnlyError("Command # 1 (XADD app:event * a b) of pipeline caused error: You can't write")

    assert connection.describe(wrongtype, "app:event") == (
        f"the key 'app:event' at {where} holds another type of value, not a stream (WRONGTYPE); left untouched"
    )
    assert connection.describe(other) == (
        f"Redis at {where} said: The ID specified in XADD is equal or smaller than the target stream top item"
    )
    assert connection.describe(readonly).startswith(f"Redis at {where} is a read-only replica")
    connection.db.close()


def test_wait_replicas_on_a_key_of_another_type_does_not_print_the_xadd(r, server):
    r.hset("app:event", mapping={"owner": "someone else"})

    got = run("producer.py", "sensor1", "--wait-replicas", "1", "--wait-timeout", "100", url=server.url)

    assert one_error_line(got) == (
        f"Error: the key 'app:event' at 127.0.0.1:{server.port} holds another type of value, not a stream "
        "(WRONGTYPE); left untouched"
    )
    assert "XADD" not in got.stderr and "pipeline" not in got.stderr
    assert r.type("app:event") == b"hash" and r.hgetall("app:event") == {b"owner": b"someone else"}
    assert r.keys() == [b"app:event"]
