"""/healthz, /readyz and /metrics answer as the process's Health says."""

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from runtime.health import Health, OpsServer, serve_ops
from runtime.metrics import gauge


@pytest.fixture
def ops() -> Iterator[tuple[Health, OpsServer, CollectorRegistry]]:
    health, registry = Health(), CollectorRegistry()
    server = serve_ops(health, registry=registry)
    yield health, server, registry
    server.stop()


def _get(server: OpsServer, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=5)


def test_not_ready_until_told_so(ops: tuple[Health, OpsServer, CollectorRegistry]) -> None:
    health, server, _ = ops
    health.not_ready("recovering")

    before = _get(server, "/readyz")
    health.ready()
    after = _get(server, "/readyz")

    assert (before.status_code, before.text.strip()) == (503, "recovering")
    assert after.status_code == 200


def test_alive_while_running_and_dead_after(ops: tuple[Health, OpsServer, CollectorRegistry]) -> None:
    health, server, _ = ops

    alive = _get(server, "/healthz")
    health.dead("fenced")
    dead = _get(server, "/healthz")

    assert alive.status_code == 200
    assert (dead.status_code, dead.text.strip()) == (503, "fenced")


def test_metrics_endpoint_serves_the_registry(ops: tuple[Health, OpsServer, CollectorRegistry]) -> None:
    _, server, registry = ops
    gauge("exchange_resting_orders", "resting orders", registry=registry).set(7)

    response = _get(server, "/metrics")

    assert response.status_code == 200
    assert "exchange_resting_orders 7.0" in response.text


def test_unknown_path_is_404(ops: tuple[Health, OpsServer, CollectorRegistry]) -> None:
    _, server, _ = ops

    assert _get(server, "/nope").status_code == 404
