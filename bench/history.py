"""`exchange bench history --fills N`: does the history writer keep up with a matcher; how fast is GET /fills?

One JSON line per database (SQLite, then PostgreSQL), each measured in the same run as its baseline:

1. **Ingest.** Under a fresh ``bench.<id>.`` prefix on one partition, `orders` gets N resting
   sells and N buys that each take one of them (2N commands, N fills). The real matcher (in this
   process, as ``bench pipeline`` runs it) is timed from ready until it committed them all:
   ``matcher_fills_per_s``. Then the real history writer (in this process too) reads the
   `executions` that produced, into a fresh database, timed from ready until its stored position
   passes the last record: ``ingest_fills_per_s``. ``ratio`` = ingest / matcher (>= 1: it keeps up).
2. **Reads.** The store is filled up to ``--query-fills`` fill rows (synthetic rows over
   ``--accounts`` accounts, written straight into the table, untimed), then ``--queries`` signed
   ``GET /api/v1/fills`` requests (a random account, a random depth reached by its cursor) go to
   the app served by uvicorn in this process, over one keep-alive connection (HTTP, routing,
   signature check, query, JSON): ``query_p50_ms`` and ``query_p99_ms``.

PostgreSQL is ``EXCHANGE_HISTORY_DB_URL`` when it names one, else a server the ``pgserver``
package starts in a temporary directory for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from prometheus_client import CollectorRegistry

from bench.pipeline import (
    InProcessMatcher,
    Throughput,
    bench_cluster,
    percentile_ms,
    positive_int,
    produce_commands,
)
from bench.wireflow import gateway_origin, order_record
from history.api import History, create_app
from history.metrics import HistoryMetrics
from history.projection import FillRow
from history.schema import fills
from history.settings import HistorySettings
from history.store import Store
from history.writer import HistoryWriter
from matcher.service import MatcherSettings
from runtime.auth import Authenticator
from runtime.broker import free_port
from runtime.errors import UserError
from runtime.health import Health
from runtime.keys import ApiKey, Scope
from runtime.live_symbols import LiveRegistry
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.signing import signed_headers
from runtime.symbols import load_registry
from runtime.topics import TopicNames

log = logging.getLogger("bench.history")

SYMBOL = "SYM000"
PRICE = 10_000
GUARD_S = 900.0
SAMPLE_S = 0.005
LOAD_CHUNK = 20_000
SECRET = "bench-history-secret-0123456789"
# The synthetic rows' times: after any real flow's, one a millisecond.
SYNTHETIC_BASE_TS_NS = 1_800_000_000_000_000_000


def crossing_commands(fills_wanted: int) -> Iterator[Any]:
    """N resting sells, then N buys at the same price: each buy takes one sell (one fill)."""
    from bench.wireflow import WireCommand

    for seq in range(2 * fills_wanted):
        side = "SELL" if seq < fills_wanted else "BUY"
        record = order_record(
            gateway_origin(seq), SYMBOL, account=f"acct-{seq % 8}", client_order_id=f"o{seq}",
            side=side, qty=1, price=PRICE,
        )  # fmt: skip
        yield WireCommand(SYMBOL, "NewOrder", record)


class InProcessWriter:
    """The real history writer in a thread of this process."""

    def __init__(self, settings: HistorySettings) -> None:
        self.store = Store(settings.database_url())
        self.shutdown = Shutdown()
        self.health = Health()
        registry = LiveRegistry(load_registry(settings.symbols_file))
        self.writer = HistoryWriter(
            settings,
            store=self.store,
            metrics=HistoryMetrics(CollectorRegistry()),
            health=self.health,
            registry=registry,
            shutdown=self.shutdown,
        )
        self._thread = threading.Thread(target=self.writer.run, name="history-writer", daemon=True)

    def throughput(self, end: int, fills_count: int) -> Throughput:
        """Time the writer from ready until its position in partition 0 reaches ``end``."""
        self._thread.start()
        started = self._wait("ready", lambda: self.health.readiness()[0])
        finished = self._wait(f"offset {end}", lambda: self.writer.next_offsets.get(0, 0) >= end)
        return Throughput(fills_count, finished - started, 0)

    def _wait(self, condition: str, check: Any) -> float:
        deadline = time.monotonic() + GUARD_S
        while not check():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise UserError(f"the history writer did not reach {condition}")
            time.sleep(SAMPLE_S)
        return time.perf_counter()

    def stop(self) -> None:
        self.shutdown.request()
        self._thread.join(GUARD_S)


def last_record_end(bootstrap: str, topic: str) -> int:
    """The offset after the last committed record of partition 0 (commit markers take offsets too)."""
    from runtime.kafka import CommittedConsumer, read_to_end

    reader = CommittedConsumer(bootstrap, group_id=f"bench-end-{time.time_ns()}", client_id="bench-end")
    try:
        high = reader.high_watermark(topic, 0)
    finally:
        reader.close()
    last = None
    for message in read_to_end(bootstrap, topic, 0, start=max(0, high - 16)):
        last = message.offset()
    if last is None:
        raise UserError(f"{topic} holds no committed record")
    return int(last) + 1


def fill_the_store(store: Store, rows: int, accounts: int, seed: int) -> None:
    """Synthetic fill rows until the table holds ``rows`` (straight into the table, untimed)."""
    with store.engine.connect() as connection:
        have = int(connection.execute(sa.select(sa.func.count()).select_from(fills)).scalar() or 0)
    rng = random.Random(seed)
    for start in range(have, rows, LOAD_CHUNK):
        # The store's own bulk write (COPY on PostgreSQL): a million rows in seconds, not minutes.
        store.insert_fills(
            _synthetic_fill(n, f"bench-{rng.randrange(accounts)}", rng)
            for n in range(start, min(rows, start + LOAD_CHUNK))
        )


def _synthetic_fill(n: int, account: str, rng: random.Random) -> FillRow:
    return FillRow(
        symbol=SYMBOL,
        trade_id=(1 << 50) + n,
        liquidity="TAKER",
        order_id=(1 << 40) + n,
        account=account,
        client_order_id=None,
        side="BUY",
        price=PRICE + rng.randrange(100),
        qty=1 + rng.randrange(10),
        counterparty_order_id=(1 << 41) + n,
        ts_ns=SYNTHETIC_BASE_TS_NS + n * 1_000_000,
    )


def query_latencies(
    settings: HistorySettings, store: Store, accounts: int, queries: int, seed: int
) -> list[int]:
    """Nanoseconds of each signed GET /api/v1/fills to the app served by uvicorn (one keep-alive client)."""
    keys = {
        f"bench-{a}": ApiKey(f"bench-{a}", SECRET, f"bench-{a}", frozenset({Scope.READ}))
        for a in range(accounts)
    }
    history = History(
        store,
        LiveRegistry(load_registry(settings.symbols_file)),
        Authenticator(keys, 60.0, 1e9, 1_000_000_000),
        TopicNames.with_prefix(settings.topic_prefix),
        HistoryMetrics(CollectorRegistry()),
        Health(),
    )
    rng = random.Random(seed)
    latencies = []
    with served(create_app(history)) as url, httpx.Client(base_url=url, timeout=30) as client:
        cursor: str | None = None
        account = "bench-0"
        for n in range(queries):
            if cursor is None or rng.random() < 0.5:  # a new walk: a random account's newest page
                account, cursor = f"bench-{rng.randrange(accounts)}", None
            query = "limit=100" + (f"&cursor={cursor}" if cursor else "")
            headers = signed_headers(
                account, SECRET, timestamp_ms=int(time.time() * 1000) + n, method="GET",
                path="/api/v1/fills", query=query, body=b"",
            )  # fmt: skip
            started = time.perf_counter_ns()
            answer = client.get(f"/api/v1/fills?{query}", headers=headers)
            latencies.append(time.perf_counter_ns() - started)
            if answer.status_code != 200:
                raise UserError(f"GET /api/v1/fills answered {answer.status_code}: {answer.text[:200]}")
            cursor = answer.json()["next_cursor"]
    return latencies


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread: its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise UserError("the bench's API server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def databases(workdir: Path, only: str) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of each database to measure: a SQLite file, and PostgreSQL (the set one or pgserver's)."""
    found = []
    if only in ("sqlite", "both"):
        found.append(("sqlite", f"sqlite:///{workdir / 'history.sqlite3'}"))
    server = None
    if only in ("postgresql", "both"):
        configured = load_settings(HistorySettings).history_db_url
        if configured.startswith("postgresql"):
            found.append(("postgresql", configured))
        else:
            from pgserver.postgres_server import get_server

            server = get_server(workdir / "postgres", cleanup_mode="delete")
            found.append(
                ("postgresql", server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1))
            )
    try:
        yield found
    finally:
        if server is not None:
            server.cleanup()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fills", type=positive_int, default=50_000, help="fills the matcher makes and history ingests"
    )
    parser.add_argument(
        "--query-fills", type=positive_int, default=1_000_000, help="fill rows stored for the reads"
    )
    parser.add_argument(
        "--accounts", type=positive_int, default=100, help="accounts the stored rows spread over"
    )
    parser.add_argument("--queries", type=positive_int, default=2_000, help="GET /fills requests timed")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per timed request
    with (
        tempfile.TemporaryDirectory(prefix="exchange-bench-") as workdir,
        bench_cluster(settings, [SYMBOL], Path(workdir)) as cluster,
        databases(Path(workdir), args.db) as dbs,
    ):
        count = produce_commands(cluster.bootstrap, cluster.topics.orders, crossing_commands(args.fills))
        matcher_settings = MatcherSettings(
            kafka_bootstrap=cluster.bootstrap, topic_prefix=cluster.prefix, symbols_file=cluster.registry_file
        )
        matcher = InProcessMatcher(matcher_settings).start()
        try:
            matched = matcher.throughput(count)
        finally:
            matcher.stop()
        end = last_record_end(cluster.bootstrap, cluster.topics.executions)
        for name, url in dbs:
            history_settings = HistorySettings(
                kafka_bootstrap=cluster.bootstrap,
                topic_prefix=cluster.prefix,
                symbols_file=cluster.registry_file,
                history_db_url=url,
            )
            writer = InProcessWriter(history_settings)
            try:
                ingested = writer.throughput(end, args.fills)
            finally:
                writer.stop()
            log.info("filling the store", extra={"db": name, "rows": args.query_fills})
            fill_the_store(writer.store, args.query_fills, args.accounts, args.seed)
            latencies = query_latencies(
                history_settings, writer.store, args.accounts, args.queries, args.seed
            )
            writer.store.close()
            print(json.dumps(report(name, args.fills, matched, ingested, latencies=latencies, args=args)))
    return 0


def report(
    db: str, fills_count: int, matched: Throughput, ingested: Throughput, *, latencies: list[int], args: Any
) -> dict[str, Any]:
    """One database's JSON line: the issue's keys first, then what helps to read them."""
    matcher_rate = fills_count / matched.seconds
    ingest_rate = fills_count / ingested.seconds
    return {
        "db": db,
        "fills": fills_count,
        "ingest_fills_per_s": round(ingest_rate),
        "matcher_fills_per_s": round(matcher_rate),
        "ratio": round(ingest_rate / matcher_rate, 2),
        "query_p50_ms": percentile_ms(latencies, 50),
        "query_p99_ms": percentile_ms(latencies, 99),
        "commands": 2 * fills_count,
        "stored_fills": args.query_fills,
        "queries": len(latencies),
        "notes": (
            "matcher: in-process, ready to the last command committed (2 commands per fill); history: "
            "in-process writer, ready to its stored position past the last executions record "
            "(rows and position in one transaction per batch). Queries, with the writer stopped: signed "
            "GET /api/v1/fills?limit=100 "
            "through the ASGI app in-process, random accounts, half of them the next page by cursor"
        ),
    }
