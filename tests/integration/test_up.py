"""`exchange up` on an existing cluster: topics, one ready matcher per partition, a gateway taking
orders with the demo key it printed, a ready relay, the history service answering with the order,
and Ctrl-C stops it all."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient

from exchange.client import ExchangeClient
from runtime.signing import signed_headers
from runtime.topics import TopicNames
from tests.integration.up_fixtures import READY_GUARD_S, exchange_up, ready


def _history_orders(port: int, secret: str) -> list[dict[str, object]]:
    """The demo account's orders as the history service answers them (none while it cannot answer)."""
    headers = signed_headers("demo", secret, timestamp_ms=int(time.time() * 1000), method="GET",
                             path="/api/v1/orders/history", query="", body=b"")  # fmt: skip
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders/history", headers=headers, timeout=5)
    except httpx.HTTPError:
        return []
    return list(answer.json()["orders"]) if answer.status_code == 200 else []


def _wait_for_history(port: int, secret: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + READY_GUARD_S
    while not (orders := _history_orders(port, secret)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return orders


def test_up_runs_matchers_a_gateway_and_history_all_ready_and_stops_everything_on_ctrl_c(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> None:
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path) as up:
        existing = set(kafka_admin.list_topics(timeout=10).topics)
        all_ready = up.wait_all_ready()
        with ExchangeClient(f"http://127.0.0.1:{up.gateway_port}", "demo", up.demo_secret()) as demo:
            order = demo.place_order("BTC-USD", "buy", "0.001", price="60000.00")
        history = _wait_for_history(up.history_port, up.demo_secret())

        up.process.send_signal(signal.SIGINT)
        exit_code = up.process.wait(timeout=60)

    assert any(kafka_bootstrap in line for line in up.output)
    assert set(TopicNames.with_prefix(topic_prefix).all()) <= existing
    assert all_ready
    assert order["status"] == "NEW"
    assert [(o["order_id"], o["status"], o["price"]) for o in history] == [
        (order["order_id"], "NEW", "60000.00")
    ]
    assert exit_code == 0
    assert not any(ready(port) for port in up.ports)  # no service outlives `exchange up`
