"""rediss://: TLS to Redis, with the certificate checked against a CA the user names."""

from __future__ import annotations

import redis
import trustme
from conftest import run

from stream_pubsub.local_server import LocalServer, free_port


def tls_server(server_binary, folder):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(folder / "server.pem")
    cert.private_key_pem.write_to_path(folder / "server.key")
    tls_port = free_port()
    server = LocalServer(
        server_binary,
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(folder / "server.pem"),
        "--tls-key-file",
        str(folder / "server.key"),
        "--tls-ca-cert-file",
        str(folder / "ca.pem"),
        "--tls-auth-clients",
        "no",
        folder=str(folder),
    )
    try:
        server.start()
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            import pytest

            pytest.skip(f"{server_binary} was built without TLS")
        raise
    return server, tls_port


def test_rediss_url_with_the_servers_ca(server_binary, tmp_path):
    server, tls_port = tls_server(server_binary, tmp_path)
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}"
        sent = run("producer.py", "sensor1", url=url)
        assert sent.returncode == 0, sent.stderr
        got = run("consumer.py", "group1", "c1", "--start-from", "0", "--burst", url=url)
        assert got.returncode == 0, got.stderr
        entry_id = sent.stdout.split()[1]
        assert got.stdout.startswith(f"{entry_id} sensor1 ")
        plain = redis.Redis.from_url(server.url)  # the same server, over its plain port
        assert plain.xinfo_groups("app:event")[0]["pending"] == 0
    finally:
        server.stop()


def test_rediss_url_with_an_untrusted_certificate_fails_in_one_line(server_binary, tmp_path):
    server, tls_port = tls_server(server_binary, tmp_path)
    try:
        got = run("producer.py", "sensor1", url=f"rediss://:s3cret@127.0.0.1:{tls_port}/0", timeout=20)
        assert got.returncode == 1
        assert got.stderr.count("\n") == 1 and "Traceback" not in got.stderr
        assert "certificate verify failed" in got.stderr and f"127.0.0.1:{tls_port}" in got.stderr
        assert "s3cret" not in got.stderr
        assert redis.Redis.from_url(server.url).exists("app:event") == 0
    finally:
        server.stop()
