"""Every metric the dashboards and alerts name is exported by the running cluster, with the labels
their expressions use: `exchange up`, orders through the gateway (resting, crossing, cancelled and
refused), WebSocket clients on the relay (one following every channel, one refused, one flooding),
history caught up with the fills; then every service's /metrics is scraped and each expression is
checked against the series found. The count of names used against found is printed as one JSON
line and kept in build/test-artifacts/metric-coverage.json."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from exchange.client import ExchangeClient
from relay.protocol import CloseCode
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import Symbol, SymbolStatus, load_registry
from tests.e2e.conftest import ARTIFACTS
from tests.integration.relay_fixtures import WsClient
from tests.integration.up_fixtures import READY_GUARD_S, UpCluster, exchange_up, history_get
from tests.observability import EXTERNAL_METRICS, alert_file_exprs, dashboard_exprs, problems_of, uses_of

REPORT = ARTIFACTS / "metric-coverage.json"
# More requests at once than a relay client's burst (EXCHANGE_RELAY_RATE_BURST, 100).
FLOOD_REQUESTS = 300


def scraped_series(up: UpCluster) -> dict[str, frozenset[str]]:
    """Every sample name on every service's /metrics, with the label names its samples carry."""
    labels: dict[str, set[str]] = defaultdict(set)
    for port in up.ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels[sample.name].update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def trade_every_symbol(demo: ExchangeClient, symbols: list[Symbol]) -> int:
    """On each symbol: a resting sell, a buy crossing half of it, a resting buy cancelled. The fills."""
    fills = 0
    for symbol in symbols:
        lot, price = symbol.min_qty_lots, symbol.reference_price_ticks
        demo.place_order(symbol.name, "sell", symbol.lots_to_qty(2 * lot), price=symbol.ticks_to_price(price))
        crossing = demo.place_order(
            symbol.name, "buy", symbol.lots_to_qty(lot), price=symbol.ticks_to_price(price)
        )
        fills += len(crossing["fills"])
        resting = demo.place_order(
            symbol.name, "buy", symbol.lots_to_qty(lot), price=symbol.ticks_to_price(price - 1)
        )
        demo.cancel_order(resting["order_id"], symbol.name)
    return fills


def follow_every_channel(up: UpCluster, symbol: str, secret: str) -> WsClient:
    """A relay client on the symbol's book, trades, ticker and candles and the account's executions."""
    watcher = WsClient(f"ws://127.0.0.1:{up.relay_port}/ws")
    # Authenticated first: the other channels' first messages would come between.
    assert watcher.auth("demo", secret)["type"] == "authenticated"
    watcher.send(op="subscribe", channel="executions")
    watcher.recv_type("subscribed")
    watcher.subscribe_book(symbol)
    for channel in ("trades", "ticker", "candles"):
        watcher.send(op="subscribe", channel=channel, symbol=symbol)
        watcher.recv_type("subscribed")
    return watcher


def misbehave_on_the_relay(up: UpCluster) -> int | None:
    """One refused request (an unknown op), then a flood; the close code the flood gets."""
    rude = WsClient(f"ws://127.0.0.1:{up.relay_port}/ws")
    rude.send(op="shout")
    assert rude.recv()["type"] == "error"
    try:
        for _ in range(FLOOD_REQUESTS):
            rude.send(op="ping")
        while True:
            rude.recv()
    except ConnectionClosed:
        pass
    code = rude.connection.close_code
    rude.close()
    return code


def wait_for_history_fills(up: UpCluster, secret: str, fills: int) -> int:
    deadline = time.monotonic() + READY_GUARD_S
    found: list[Any] = []
    while len(found) < fills and time.monotonic() < deadline:
        answer = history_get(up.history_port, secret, "/api/v1/fills")
        found = answer["fills"] if answer else []
        time.sleep(0.2)
    return len(found)


def coverage(
    used: set[str], scraped: dict[str, frozenset[str]], problems: dict[str, list[str]]
) -> dict[str, Any]:
    """Names used against names found, for the closing note and the test's report."""
    external = sorted(used & set(EXTERNAL_METRICS))
    ours = used - set(external)
    return {
        "names_used": len(used),
        "names_of_the_services": len(ours),
        "found_in_scrapes": len(ours & set(scraped)),
        "external": external,
        "expressions": len(problems),
        "expressions_with_problems": {where: found for where, found in problems.items() if found},
    }


def test_every_metric_in_the_dashboards_and_alerts_is_scraped_from_the_running_cluster_with_its_labels(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    registry = load_registry(DEFAULT_SYMBOLS_FILE)
    symbols = [s for s in registry if s.status is SymbolStatus.TRADING]
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path) as up:
        assert up.wait_all_ready()
        secret = up.demo_secret()
        watcher = follow_every_channel(up, symbols[0].name, secret)
        with ExchangeClient(f"http://127.0.0.1:{up.gateway_port}", "demo", secret) as demo:
            fills = trade_every_symbol(demo, symbols)
        unsigned = httpx.get(
            f"http://127.0.0.1:{up.gateway_port}/api/v1/orders", params={"symbol": "BTC-USD"}
        )
        trade = watcher.recv_type("trade")
        flood_close = misbehave_on_the_relay(up)
        in_history = wait_for_history_fills(up, secret, fills)
        scraped = scraped_series(up)
        watcher.close()

    exprs = {f"alert {alert}": expr for alert, expr in alert_file_exprs()}
    exprs |= {f"{board}: {title}: {expr}": expr for board, title, expr in dashboard_exprs()}
    problems = {where: problems_of(expr, scraped) for where, expr in exprs.items()}
    used = {name for expr in exprs.values() for name, _ in uses_of(expr).selectors}
    report = coverage(used, scraped, problems)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))  # the figure the closing note quotes (pytest -s shows it)

    assert {s.partition for s in symbols} == set(range(registry.partition_count))  # every matcher trades
    assert fills >= len(symbols) and in_history >= fills
    assert unsigned.status_code == 401 and trade["type"] == "trade"
    assert flood_close == CloseCode.POLICY
    assert report["expressions_with_problems"] == {}
    assert report["found_in_scrapes"] == report["names_of_the_services"] > 40
    # The same check refuses a name no service exports, and a label its series do not carry.
    assert problems_of("rate(exchange_relay_messages_sent_totl[5m])", scraped)
    assert problems_of('exchange_history_lag_records{symbol="BTC-USD"}', scraped)
