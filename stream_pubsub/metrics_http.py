"""Serving metrics over HTTP, for Prometheus to scrape: `admin.py metrics --serve ADDRESS` (and the
consumer's and the producer's --metrics ADDRESS).

An ADDRESS is HOST:PORT as a person writes it: `:9103` (every interface, as in a container),
`127.0.0.1:9103`, `[::1]:9103`. It is bound before anything else is done, so an address that is
malformed or taken is one line and exit 2 before Redis is even asked. The exposition text is
prometheus_client's own (make_wsgi_app), served from a thread; a process may add its own paths
(a consumer's /livez and /readyz).
"""

from __future__ import annotations

import errno
import re
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ADDRESS = re.compile(r"(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})")


class AddressError(ValueError):
    """An ADDRESS that cannot be listened on; the text is the sentence for the user."""


def parse(address: str, option: str) -> tuple[str, int]:
    """(host, port) of HOST:PORT; host "" means every interface."""
    found = ADDRESS.fullmatch(address.strip())
    if not found or not 0 < int(found["port"]) < 65536:
        raise AddressError(
            f"{option} {address!r} is not an address to listen on: give HOST:PORT, "
            "like :9103 (every interface) or 127.0.0.1:9103"
        )
    return found["ipv6"] or found["host"], int(found["port"])


class Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        """No line per scrape on stderr."""


def listen(address: str, option: str) -> WSGIServer:
    """A server bound to ADDRESS (not serving yet), or AddressError saying why not."""
    host, port = parse(address, option)
    try:
        family = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except socket.gaierror:
        raise AddressError(f"{option} {address}: no such host as {host!r} here") from None
    server_class = type("Server", (ThreadingServer,), {"address_family": family})
    try:
        return make_server(host or "0.0.0.0", port, not_found, server_class, handler_class=Quiet)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressError(f"{option} {address}: the port is taken (something else listens there)") from None
        raise AddressError(f"{option} {address}: cannot listen there ({exc.strerror})") from None


class ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape does not hold up a health check."""

    daemon_threads = True


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"not found: the metrics are at /metrics\n"]


def serve(server: WSGIServer, registry, routes: dict | None = None) -> None:
    """Serve /metrics from the CollectorRegistry that `registry()` returns (called at the first
    scrape, in the server's thread: a script nobody scrapes never imports prometheus_client) and
    each of `routes` (path -> function returning (HTTP status, text)), from a daemon thread, until
    the process ends."""
    lock, metrics, routes = threading.Lock(), [], routes or {}

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            with lock:
                if not metrics:
                    from prometheus_client import make_wsgi_app

                    metrics.append(make_wsgi_app(registry()))
            return metrics[0](environ, start_response)
        if path in routes:
            status, text = routes[path]()
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [text.encode()]
        return not_found(environ, start_response)

    server.set_app(app)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
