"""`exchange up` on an existing cluster: topics, one ready matcher per partition, a gateway taking
orders with the demo key it printed, a ready relay, the history service answering with the order,
and Ctrl-C stops it all; `--partitions N` shards the local registry over N matchers, and refuses
topics made with another count."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from exchange.client import ExchangeClient, demo_keys
from exchange.up import DEMO_MARKET_KEYS
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import load_registry
from runtime.topics import TopicNames
from tests.integration.up_fixtures import (
    READY_GUARD_S,
    STDERR_FILE,
    exchange_up,
    history_get,
    ready,
    up_process,
)

# An order id is (partition << 48) | orders offset.
PARTITION_SHIFT = 48


def _history_orders(port: int, secret: str) -> list[dict[str, object]]:
    """The demo account's orders as the history service answers them (none while it cannot answer)."""
    answer = history_get(port, secret, "/api/v1/orders/history")
    return list(answer["orders"]) if answer else []


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


def test_up_with_two_partitions_serves_symbols_of_both_and_later_refuses_another_count(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> None:
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path, partitions=2) as up:
        all_ready = up.wait_all_ready()
        registry = load_registry(tmp_path / "symbols-2-partitions.yaml")
        firsts = [registry.symbols_of_partition(p)[0] for p in range(registry.partition_count)]
        with ExchangeClient(f"http://127.0.0.1:{up.gateway_port}", "demo", up.demo_secret()) as demo:
            orders = {
                s.name: demo.place_order(s.name, "buy", s.lots_to_qty(s.min_qty_lots),
                                         price=s.ticks_to_price(s.reference_price_ticks))
                for s in firsts
            }  # fmt: skip
        up.process.send_signal(signal.SIGINT)
        exit_code = up.process.wait(timeout=60)
    topics = kafka_admin.list_topics(timeout=10).topics
    names = TopicNames.with_prefix(topic_prefix)

    again, _, _ = up_process(kafka_bootstrap, topic_prefix, tmp_path, partitions=3)
    try:
        again_code: int | None = again.wait(timeout=READY_GUARD_S)
    except subprocess.TimeoutExpired:  # it ran instead of refusing: stop what it started
        again.send_signal(signal.SIGINT)
        again.wait(timeout=60)
        again_code = None

    assert all_ready and exit_code == 0
    assert [line for line in up.output if "partition " in line and "kafka" not in line] == [
        f"  partition {p}: {' '.join(s.name for s in registry.symbols_of_partition(p))}\n" for p in (0, 1)
    ]
    assert {name: order["status"] for name, order in orders.items()} == {s.name: "NEW" for s in firsts}
    assert sorted(int(order["order_id"]) >> PARTITION_SHIFT for order in orders.values()) == [0, 1]
    assert len(topics[names.orders].partitions) == len(topics[names.book].partitions) == 2
    assert again_code == 2
    refusal = (tmp_path / STDERR_FILE).read_text()
    assert f"{names.orders} has 2" in refusal and "3 wanted" in refusal and "--partitions 2" in refusal
    assert len(kafka_admin.list_topics(timeout=10).topics[names.orders].partitions) == 2


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
