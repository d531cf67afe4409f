"""Fixtures for the history service: a real PostgreSQL (pgserver, once per session), a fresh database
per test on SQLite or PostgreSQL, `exchange history` as a process, signed reads, and a rebuild of
orders and fills computed directly from the `executions` topic.

The rebuild is written apart from :mod:`history.projection` on purpose: it derives each order's
final state from the last event that names it and sums its fills, so the store and the rebuild
agree only if the writer's fold and its exactly-once bookkeeping are both right.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa

from history.projection import FillRow, OrderRow
from history.store import Store
from runtime.broker import free_port
from runtime.kafka import read_to_end
from runtime.signing import signed_headers
from schemas import default_codec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CATCH_UP_GUARD_S = 180.0
KEY_SECRET = "history-test-secret-0123456789"


class Postgres:
    """A PostgreSQL server run from the pgserver package's binaries, which a test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(pgdata, cleanup_mode="delete")
        self.uri = self.server.get_uri()

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.uri


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server, started on first use and deleted at the end.

    Its data lives outside pytest's temporary directory: run as root, pgserver runs the server as
    a user of its own, which must reach the directory, and any pytest session starting meanwhile
    (another checkout's, say) makes pytest's own directory private to root again.
    """
    parent = Path(tempfile.mkdtemp(prefix="exchange-postgres-"))
    parent.chmod(0o755)
    server = Postgres(parent / "data")
    try:
        yield server
    finally:
        server.server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_uri(postgres: Postgres) -> str:
    """The base URI of the session's PostgreSQL server."""
    return postgres.uri


def fresh_postgres_database(base_uri: str) -> str:
    """A new, empty database on the server at ``base_uri``: its SQLAlchemy URL."""
    return _fresh_postgres_database(base_uri)


def _fresh_postgres_database(base_uri: str) -> str:
    name = f"history_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(base_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def history_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return _fresh_postgres_database(request.getfixturevalue("postgres_uri"))


# --- the rebuild ---------------------------------------------------------------------------------


@dataclass
class Rebuild:
    """Orders and fills as the topic says, and where each partition's last record is."""

    orders: dict[int, tuple[Any, ...]]
    fills: set[tuple[Any, ...]]
    ends: dict[int, int]  # partition -> offset after its last record


def rebuild_from_topic(bootstrap: str, topic: str, partitions: int) -> Rebuild:
    """Every order's final state and every fill, read straight from `executions`."""
    codec = default_codec()
    placed: dict[int, dict[str, Any]] = {}
    filled: dict[int, list[tuple[int, int]]] = {}
    last: dict[int, tuple[str, dict[str, Any], int]] = {}
    fills: set[tuple[Any, ...]] = set()
    ends = {}
    for partition in range(partitions):
        for message in read_to_end(bootstrap, topic, partition):
            ends[partition] = (message.offset() or 0) + 1
            _, report = codec.decode(message.value(), message.headers())
            symbol, ts = report["symbol"], report["ts_ns"]
            for name, event in report["events"]:
                kind = name.removeprefix("exchange.")
                if kind == "OrderFilled":
                    taker, maker = event["taker_order_id"], event["maker_order_id"]
                    for order, leaves in ((taker, event["taker_leaves"]), (maker, event["maker_leaves"])):
                        filled.setdefault(order, []).append((event["price"], event["qty"]))
                        last[order] = ("Filled", {"leaves": leaves}, ts)
                    fills.add(
                        (symbol, event["event_id"], "TAKER", taker, event["taker_account"], event["qty"])
                    )
                    fills.add(
                        (symbol, event["event_id"], "MAKER", maker, event["maker_account"], event["qty"])
                    )
                elif kind == "OrderAccepted":
                    placed[event["order_id"]] = {
                        **event,
                        "symbol": symbol,
                        "ts": ts,
                        "cut": 0,
                        "amended": None,
                    }
                    last[event["order_id"]] = ("Accepted", event, ts)
                elif kind == "CommandRejected":
                    if event["request"] == "NewOrder" and event["order_id"] is not None:
                        placed[event["order_id"]] = {"symbol": symbol, "ts": ts, "account": event["account"]}
                        last[event["order_id"]] = ("Rejected", event, ts)
                else:
                    order = placed.get(event["order_id"])
                    if kind == "OrderCancelled" and event["leaves"] and order is not None:
                        order["cut"] += event["cancelled_qty"]
                    if kind == "OrderAmended" and order is not None:
                        order["amended"], order["cut"] = event, 0  # the new total is after any cut
                    last[event["order_id"]] = (kind.removeprefix("Order"), event, ts)
    return Rebuild(
        {oid: _final(oid, placed[oid], filled.get(oid, []), last[oid]) for oid in placed}, fills, ends
    )


def _final(
    order_id: int, placed: dict[str, Any], fills: list[tuple[int, int]], last: tuple[str, dict[str, Any], int]
) -> tuple[Any, ...]:
    """(order id, account, status, qty, filled, remaining, notional, price, updated time)."""
    kind, event, ts = last
    done = sum(q for _, q in fills)
    notional = sum(p * q for p, q in fills)
    if kind == "Rejected":
        return (order_id, placed["account"], "REJECTED", 0, 0, 0, 0, None, ts)
    amended = placed["amended"]
    qty = (amended["qty"] if amended else placed["qty"]) - placed["cut"]
    price = amended["price"] if amended else placed["price"]
    remaining = {"Accepted": qty, "Expired": 0}.get(kind, event.get("leaves"))
    status = {
        "Expired": "EXPIRED",
        "Cancelled": "CANCELLED" if not remaining else None,
        "Filled": "FILLED" if not remaining else "PARTIALLY_FILLED",
    }.get(kind) or ("PARTIALLY_FILLED" if done else "NEW")
    return (order_id, placed["account"], status, qty, done, remaining, notional, price, ts)


def store_orders(url: str) -> dict[int, tuple[Any, ...]]:
    """The store's orders in the rebuild's terms."""
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            rows = [
                OrderRow(**{**r._mapping, "notional": int(r.notional)})
                for r in connection.execute(sa.text("SELECT * FROM orders"))
            ]
    finally:
        store.close()
    return {
        r.order_id: (
            r.order_id,
            r.account,
            r.status,
            r.qty,
            r.filled,
            r.remaining,
            r.notional,
            r.price,
            r.updated_ns,
        )
        for r in rows
    }


def store_fills(url: str) -> list[tuple[Any, ...]]:
    """The store's fill rows in the rebuild's terms (a list: a duplicate would show twice)."""
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            rows = [FillRow(**r._mapping) for r in connection.execute(sa.text("SELECT * FROM fills"))]
    finally:
        store.close()
    return [(f.symbol, f.trade_id, f.liquidity, f.order_id, f.account, f.qty) for f in rows]


def store_positions(url: str, topic: str) -> dict[int, int]:
    store = Store(url)
    try:
        return {p.partition: p.next_offset for p in store.positions(topic)}
    except sa.exc.SQLAlchemyError:
        return {}
    finally:
        store.close()


# --- `exchange history` as a process -------------------------------------------------------------


def keys_yaml(accounts: list[str]) -> str:
    lines = ["keys:"]
    for account in accounts:
        lines.append(f'  - {{id: {account}, secret: "{KEY_SECRET}", account: {account}, scopes: [read]}}')
    return "\n".join(lines) + "\n"


class HistoryProcess:
    """`exchange history` as its own process (for kill -9), with its port known."""

    started: ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(self, env: dict[str, str], db_url: str, keys_file: Path, **extra: str) -> None:
        self.port = free_port()
        self.db_url = db_url
        # Its log beside the keys: what a failed test shows first.
        self.log = keys_file.with_name(f"history-{self.port}.log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "history"],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                **env,
                "EXCHANGE_HISTORY_DB_URL": db_url,
                "EXCHANGE_HISTORY_PORT": str(self.port),
                "EXCHANGE_HISTORY_KEYS_FILE": str(keys_file),
                "EXCHANGE_HISTORY_RATE_PER_S": "100000",
                "EXCHANGE_HISTORY_RATE_BURST": "100000",
                "EXCHANGE_HISTORY_BATCH_MAX_RECORDS": "500",
                **extra,
            },
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        HistoryProcess.started.append(self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, guard_s: float = CATCH_UP_GUARD_S) -> None:
        deadline = time.monotonic() + guard_s
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"history never became ready (exit code {self.process.poll()})")
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def get(self, path: str, account: str | None = None, **params: Any) -> httpx.Response:
        """A GET, signed with ``account``'s key when one is named."""
        query = str(httpx.QueryParams({k: v for k, v in params.items() if v is not None}))
        headers = {}
        if account is not None:
            headers = signed_headers(
                account,
                KEY_SECRET,
                timestamp_ms=int(time.time() * 1000),
                method="GET",
                path=path,
                query=query,
                body=b"",
            )
        return httpx.get(f"{self.url}{path}" + (f"?{query}" if query else ""), headers=headers, timeout=30)


def wait_caught_up(url: str, topic: str, ends: dict[int, int], guard_s: float = CATCH_UP_GUARD_S) -> None:
    """Until the store's position in every partition is after that partition's last record."""
    deadline = time.monotonic() + guard_s
    while True:
        stored = store_positions(url, topic)
        if all(stored.get(p, 0) >= end for p, end in ends.items()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the store reached {stored}, not {ends}, within {guard_s} s")
        time.sleep(0.2)


@pytest.fixture
def start_history() -> Iterator[Callable[..., HistoryProcess]]:
    """``start(env, db_url, keys_file, **env)``: `exchange history` processes, killed after the test."""

    def start(env: dict[str, str], db_url: str, keys_file: Path, **extra: str) -> HistoryProcess:
        return HistoryProcess(env, db_url, keys_file, **extra)

    yield start
    while HistoryProcess.started:
        process = HistoryProcess.started.pop()
        if process.poll() is None:
            process.kill()
            process.wait()
