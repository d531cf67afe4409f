"""The relay serves the 호가창 over HTTP on its WebSocket port: files, types, the fence, the config."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import FlowCluster
from tests.integration.relay_fixtures import RunningRelay

SYMBOL = "SYM000"


@pytest.fixture
def relay(
    make_cluster: Callable[..., FlowCluster], start_relay: Callable[..., RunningRelay], tmp_path: Path
) -> RunningRelay:
    config = tmp_path / "page-config.json"
    config.write_text('{"gateway": "http://127.0.0.1:8080", "key": "demo", "secret": "s"}')
    return start_relay(make_cluster([SYMBOL]), [SYMBOL], relay_page_config=config)


def _raw_status(port: int, target: str) -> int:
    """The status of a GET sent byte for byte (an HTTP client would fold a `..` before sending it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return int(conn.recv(4096).split(b" ", 2)[1])


def test_the_page_and_its_modules_are_served_with_their_content_types(relay: RunningRelay) -> None:
    page = httpx.get(f"{relay.http}/", timeout=10)
    module = httpx.get(f"{relay.http}/app.js", timeout=10)

    assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert (module.status_code, module.headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert int(module.headers["content-length"]) == len(module.content)


def test_the_page_may_not_be_framed_nor_run_scripts_of_other_origins(relay: RunningRelay) -> None:
    policy = httpx.get(f"{relay.http}/", timeout=10).headers["content-security-policy"]

    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy


@pytest.mark.parametrize("target", ["/../server.py", "/..%2Fsettings.py", "/%2e%2e/%2e%2e/pyproject.toml"])
def test_a_path_out_of_the_web_directory_is_not_found(relay: RunningRelay, target: str) -> None:
    assert _raw_status(relay.relay.port, target) == 404


def test_the_page_config_is_served_to_a_loopback_client_and_never_cached(relay: RunningRelay) -> None:
    response = httpx.get(f"{relay.http}/config.json", timeout=10)

    assert response.status_code == 200
    assert response.json()["key"] == "demo"
    assert response.headers["cache-control"] == "no-store"
