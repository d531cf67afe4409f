"""The history API's reads and bounds over a real SQLite store (no Kafka: the rows are written directly)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text, update
from sqlalchemy.exc import SQLAlchemyError

from history.api import History, create_app
from history.metrics import HistoryMetrics
from history.models import FillsPage, TradesOut
from history.schema import REDUNDANT_TRADES_INDEX, schema_version
from history.store import Batch, PositionMoved, Store
from runtime.auth import Authenticator
from runtime.health import Health
from runtime.keys import ApiKey, Scope
from runtime.live_symbols import LiveRegistry
from runtime.signing import signed_headers
from runtime.symbols import parse_registry
from runtime.topics import TopicNames

SECRET = "unit-test-secret-0123456789"
TOPICS = TopicNames.with_prefix("")
BASE_NS = 1_764_000_000_000_000_000
REGISTRY = {
    "partition_count": 1,
    "symbols": {
        "ABC": {
            "partition": 0, "tick_size": "0.01", "lot_size": "0.001", "min_qty": "0.001", "max_qty": "1000",
            "reference_price": "100.00", "band_percent": "0", "status": "trading",
        }
    },
}  # fmt: skip


def _accepted(order_id: int, account: str, side: str, qty: int, price: int) -> tuple[str, dict[str, Any]]:
    return (
        "exchange.OrderAccepted",
        {"event_id": order_id, "order_id": order_id, "account": account, "client_order_id": f"c{order_id}",
         "side": side, "order_type": "LIMIT", "time_in_force": "GTC", "price": price, "qty": qty},
    )  # fmt: skip


def _filled(
    trade_id: int, taker: tuple[int, str, int], maker: tuple[int, str, int], price: int, qty: int
) -> Any:
    return (
        "exchange.OrderFilled",
        {"event_id": trade_id, "price": price, "qty": qty, "aggressor_side": "BUY",
         "taker_order_id": taker[0], "taker_account": taker[1], "taker_client_order_id": None,
         "taker_leaves": taker[2], "maker_order_id": maker[0], "maker_account": maker[1],
         "maker_client_order_id": None, "maker_leaves": maker[2]},
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store with alice's 30 resting sells, bob's 30 buys each filling one, and carol's one order."""
    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    store.migrate()
    store.add_partitions(TOPICS.executions, [0])
    batch = Batch()
    offset = 0
    for n in range(30):
        sell, buy = 1000 + 2 * n, 1001 + 2 * n
        ts = BASE_NS + n * 60 * 10**9
        batch.add(
            0,
            offset,
            {"symbol": "ABC", "ts_ns": ts, "events": [_accepted(sell, "alice", "SELL", 5, 10_000 + n)]},
        )
        events = [
            _accepted(buy, "bob", "BUY", 2, 10_000 + n),
            _filled(buy, (buy, "bob", 0), (sell, "alice", 3), 10_000 + n, 2),
        ]
        batch.add(0, offset + 2, {"symbol": "ABC", "ts_ns": ts + 1, "events": events})
        offset += 4  # room for the commit markers between transactions
    batch.add(
        0, offset, {"symbol": "ABC", "ts_ns": BASE_NS, "events": [_accepted(5000, "carol", "BUY", 1, 9_000)]}
    )
    store.apply(TOPICS.executions, batch)
    return store


@pytest.fixture
def client(store: Store) -> TestClient:
    keys = {a: ApiKey(a, SECRET, a, frozenset({Scope.READ})) for a in ("alice", "bob", "carol")}
    history = History(
        store,
        LiveRegistry(parse_registry(REGISTRY, "test")),
        Authenticator(keys, 5.0, 1e6, 1_000_000),
        TOPICS,
        HistoryMetrics(CollectorRegistry()),
        Health(),
    )
    return TestClient(create_app(history))


def _get(client: TestClient, path: str, account: str | None = None, **params: Any) -> Any:
    request = client.build_request("GET", path, params={k: v for k, v in params.items() if v is not None})
    if account is not None:
        query = request.url.query.decode() if isinstance(request.url.query, bytes) else str(request.url.query)
        request.headers.update(
            signed_headers(account, SECRET, timestamp_ms=int(time.time() * 1000), method="GET",
                           path=request.url.path, query=query, body=b"")
        )  # fmt: skip
    return client.send(request)


def test_an_account_sees_only_its_own_orders_with_exact_decimals(client: TestClient) -> None:
    answer = _get(client, "/api/v1/orders/history", "bob", limit=1000)

    assert answer.status_code == 200
    orders = answer.json()["orders"]
    assert len(orders) == 30 and {o["client_order_id"][:1] for o in orders} == {"c"}
    newest = orders[0]
    assert (newest["order_id"], newest["status"], newest["price"], newest["quantity"]) == (
        "1059",
        "FILLED",
        "100.29",
        "0.002",
    )
    assert newest["average_price"] == "100.29"
    assert answer.json()["as_of"]["offsets"] == {"0": 121}


def test_walking_the_pages_returns_each_fill_once_newest_first(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = _get(client, "/api/v1/fills", "alice", limit=7, cursor=cursor).json()
        seen += [f["trade_id"] for f in page["fills"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [str(1001 + 2 * n) for n in reversed(range(30))]


def test_fills_of_one_order_and_a_status_filter(client: TestClient) -> None:
    fills = _get(client, "/api/v1/fills", "alice", order_id="1000").json()["fills"]
    resting = _get(client, "/api/v1/orders/history", "alice", status="PARTIALLY_FILLED").json()["orders"]

    assert [(f["liquidity"], f["side"], f["quantity"]) for f in fills] == [("maker", "sell", "0.002")]
    assert len(resting) == 30 and all(o["remaining"] == "0.003" for o in resting)


def test_fills_and_trades_answers_are_exactly_their_declared_models(client: TestClient) -> None:
    # The routes build these bodies as plain JSON values; the models are what OpenAPI promises.
    fills = _get(client, "/api/v1/fills", "alice", limit=3).json()
    none = _get(client, "/api/v1/fills", "alice", order_id=str(1 << 63)).json()
    trades = _get(client, "/api/v1/trades/ABC", limit=3).json()

    assert len(fills["fills"]) == 3 and none["fills"] == [] and len(trades["trades"]) == 3
    for body, model in ((fills, FillsPage), (none, FillsPage), (trades, TradesOut)):
        assert model.model_validate(body, strict=True).model_dump(mode="json") == body


def test_another_accounts_order_id_finds_nothing(client: TestClient) -> None:
    assert _get(client, "/api/v1/fills", "carol", order_id="1000").json()["fills"] == []


def test_public_trades_and_candles_need_no_key(client: TestClient) -> None:
    trades = _get(client, "/api/v1/trades/ABC", limit=3).json()["trades"]
    start_ms = BASE_NS // 1_000_000
    candles = _get(
        client, "/api/v1/candles/ABC", interval="5m", start=start_ms, end=start_ms + 30 * 60_000
    ).json()

    assert [t["price"] for t in trades] == ["100.29", "100.28", "100.27"]
    first = candles["candles"][0]
    assert (first["open"], first["close"], first["volume"], first["trades"]) == (
        "100.00", "100.04", "0.010", 5
    )  # fmt: skip
    assert len(candles["candles"]) == 6


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": 1001}, 422, "OUT_OF_RANGE"),
        ({"limit": 10**30}, 422, "OUT_OF_RANGE"),
        ({"limit": 0}, 422, "OUT_OF_RANGE"),
        ({"cursor": "not-a-cursor"}, 400, "BAD_CURSOR"),
        ({"cursor": "WyJ4Il0="}, 400, "BAD_CURSOR"),  # ["x"]: valid base64 JSON, not a key
        ({"cursor": "WzEsMl0" + "A" * 300}, 422, "TOO_LONG"),
        ({"start": 2_000, "end": 1_000}, 422, "BAD_RANGE"),
        ({"start": -1}, 422, "OUT_OF_RANGE"),
        ({"end": 10**19}, 422, "OUT_OF_RANGE"),
        ({"status": "DONE"}, 422, "INVALID_VALUE"),
    ],
)
def test_bad_parameters_are_refused_with_a_code(
    client: TestClient, params: dict[str, Any], status: int, code: str
) -> None:
    answer = _get(client, "/api/v1/orders/history", "alice", **params)

    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_a_range_of_years_is_bounded_by_the_limit_and_candles_refuse_it(client: TestClient) -> None:
    orders = _get(client, "/api/v1/orders/history", "alice", start=0, end=4_000_000_000_000, limit=5)
    candles = _get(client, "/api/v1/candles/ABC", interval="1m", start=0, end=4_000_000_000_000)

    assert orders.status_code == 200 and len(orders.json()["orders"]) == 5
    assert (candles.status_code, candles.json()["code"]) == (422, "RANGE_TOO_LARGE")


def test_unsigned_reads_of_an_account_are_refused(client: TestClient) -> None:
    answer = _get(client, "/api/v1/fills")

    assert (answer.status_code, answer.json()["code"]) == (401, "MISSING_SIGNATURE")


def test_a_batch_of_unreadable_records_moves_the_position_and_keeps_the_last_time(store: Store) -> None:
    before = store.positions(TOPICS.executions)[0]
    batch = Batch()
    batch.add(0, before.next_offset, {"symbol": "", "ts_ns": None, "events": []})

    store.apply(TOPICS.executions, batch)

    after = store.positions(TOPICS.executions)[0]
    assert (after.next_offset, after.last_ts_ns) == (before.next_offset + 1, before.last_ts_ns)


def test_a_batch_behind_the_stored_position_is_refused_and_writes_nothing(store: Store) -> None:
    batch = Batch()
    batch.add(0, 0, {"symbol": "ABC", "ts_ns": BASE_NS, "events": [_accepted(9999, "dave", "BUY", 1, 100)]})

    with pytest.raises(PositionMoved):
        store.apply(TOPICS.executions, batch)

    assert (
        store.order_page("dave", symbol=None, status=None, start_ns=None, end_ns=None, after=None, limit=10)
        == []
    )


def test_reads_of_a_database_without_the_tables_fail_as_store_errors(tmp_path: Path) -> None:
    # The writer waits out SQLAlchemyError and the API answers it with 503: a read must never leak the
    # driver's own exception (before the first migration there are no tables).
    empty = Store(f"sqlite:///{tmp_path / 'empty.sqlite3'}")

    with pytest.raises(SQLAlchemyError):
        empty.positions(TOPICS.executions)
    with pytest.raises(SQLAlchemyError):
        empty.fill_page("alice", symbol=None, order_id=None, start_ns=None, end_ns=None, after=None, limit=5)


def test_a_version_1_database_loses_the_trades_index_and_trades_still_read_without_a_sort(
    store: Store,
) -> None:
    # As version 1 left a database: the index on (symbol, liquidity, trade id) and the version.
    with store.engine.begin() as connection:
        connection.execute(
            text(f"CREATE INDEX {REDUNDANT_TRADES_INDEX} ON fills (symbol, liquidity, trade_id)")
        )
        connection.execute(update(schema_version).values(version=1))

    assert store.migrate() == [2]
    assert store.migrate() == []
    with store.engine.connect() as connection:
        indexes = {
            row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type='index'"))
        }
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                text("EXPLAIN QUERY PLAN SELECT * FROM fills WHERE symbol = 'ABC' AND liquidity = 'TAKER' "
                     "ORDER BY trade_id DESC LIMIT 3")
            )
        )  # fmt: skip
    assert REDUNDANT_TRADES_INDEX not in indexes and "TEMP B-TREE" not in plan, plan
    trades = store.trades("ABC", 3)
    assert [t.trade_id for t in trades] == [1059, 1057, 1055]
