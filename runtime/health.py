"""Liveness, readiness and metrics over HTTP for every process.

``/healthz`` answers 200 while the process runs its loop; ``/readyz`` answers 200 only
once the process can do its job (a matcher after recovery, say) and 503 before;
``/metrics`` is the Prometheus exposition. Services without a web framework of their own
(the matcher) serve these with :func:`serve_ops`; the FastAPI services mount the same
:class:`Health` object on their own routes.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import REGISTRY, CollectorRegistry

from runtime.metrics import exposition


class Health:
    """The process's own view of whether it is alive and ready, with the reason when it is not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alive = True
        self._ready = False
        self._reason = "starting"

    def ready(self) -> None:
        with self._lock:
            self._ready, self._reason = True, "ready"

    def not_ready(self, reason: str) -> None:
        with self._lock:
            self._ready, self._reason = False, reason

    def dead(self, reason: str) -> None:
        with self._lock:
            self._alive, self._ready, self._reason = False, False, reason

    def liveness(self) -> tuple[bool, str]:
        with self._lock:
            return self._alive, self._reason

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._reason


class OpsServer:
    """A background HTTP server for /healthz, /readyz and /metrics."""

    def __init__(
        self, health: Health, host: str = "127.0.0.1", port: int = 0, registry: CollectorRegistry = REGISTRY
    ) -> None:
        handler = _handler_for(health, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_ops(
    health: Health, host: str = "127.0.0.1", port: int = 0, registry: CollectorRegistry = REGISTRY
) -> OpsServer:
    """Start the ops endpoints in a daemon thread; port 0 picks a free port (see ``.port``)."""
    return OpsServer(health, host, port, registry).start()


def _handler_for(health: Health, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class OpsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, content_type = exposition(registry)
                self._send(HTTPStatus.OK, body, content_type)
            elif self.path in ("/healthz", "/readyz"):
                ok, reason = health.liveness() if self.path == "/healthz" else health.readiness()
                status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, (reason + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the logs; stay quiet."""

    return OpsHandler
