"""The gateway's CORS setting: off by default, and on for the configured origins only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.settings import GatewaySettings

PAGE = "http://127.0.0.1:8090"
PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-api-key,x-timestamp,x-signature",
}


def _client(origins: str) -> TestClient:
    # Not entered: the lifespan (Kafka) never starts, and a preflight needs none of it.
    return TestClient(create_app(GatewaySettings(gateway_cors_origins=origins), CollectorRegistry()))


def test_a_preflight_from_an_allowed_origin_is_allowed_with_the_signature_headers() -> None:
    response = _client(f"{PAGE}, http://localhost:8090").options("/api/v1/orders", headers=PREFLIGHT)

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PAGE
    allowed = response.headers["access-control-allow-headers"].lower()
    assert all(name in allowed for name in ("x-api-key", "x-timestamp", "x-signature"))


def test_a_preflight_from_another_origin_is_refused() -> None:
    response = _client(PAGE).options("/api/v1/orders", headers={**PREFLIGHT, "Origin": "http://evil.test"})

    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default() -> None:
    response = _client("").options("/api/v1/orders", headers=PREFLIGHT)

    assert "access-control-allow-origin" not in response.headers
