"""`exchange up` on an existing cluster: topics, one ready matcher per partition, a gateway taking
orders with the demo key it printed, a ready relay, the history service answering with the order,
and Ctrl-C stops it all."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient

from exchange.client import ExchangeClient, demo_keys
from exchange.up import DEMO_MARKET_KEYS
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.signing import signed_headers
from runtime.symbols import load_registry
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


def _open_orders_after_a_restart(
    bootstrap: str, topic_prefix: str, data_dir: Path, keys: dict[str, str]
) -> list[dict[str, object]]:
    """The demo market's open orders on every symbol, read from `exchange up` started again (no demo)."""
    with exchange_up(bootstrap, topic_prefix, data_dir) as again:
        assert again.wait_all_ready()
        orders: list[dict[str, object]] = []
        for key_id in DEMO_MARKET_KEYS:
            with ExchangeClient(f"http://127.0.0.1:{again.gateway_port}", key_id, keys[key_id]) as client:
                orders += [
                    o
                    for symbol in load_registry(DEFAULT_SYMBOLS_FILE)
                    for o in client.open_orders(symbol.name)
                ]
        again.process.send_signal(signal.SIGINT)
        again.process.wait(timeout=60)
    return orders


def test_up_with_demo_prints_the_page_and_runs_a_moving_market_that_ctrl_c_cancels(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path, "--demo") as up:
        assert up.wait_all_ready()
        gateway = f"http://127.0.0.1:{up.gateway_port}"
        keys = demo_keys(tmp_path)
        with ExchangeClient(gateway, "demo", up.demo_secret()) as viewer:
            deadline = time.monotonic() + READY_GUARD_S
            while (
                not ((book := viewer.book("BTC-USD"))["bids"] and book["asks"])
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
        up.process.send_signal(signal.SIGINT)
        exit_code = up.process.wait(timeout=60)
        # The gateway is gone with `exchange up`: the book left behind is read from a new one below.
    demo_orders_left = _open_orders_after_a_restart(kafka_bootstrap, topic_prefix, tmp_path, keys)

    assert any(f"호가창: http://127.0.0.1:{up.relay_port}/?symbol=BTC-USD" in line for line in up.output)
    assert book["bids"] and book["asks"]
    assert exit_code == 0
    assert demo_orders_left == []
