"""The history database: one code path over SQLite and PostgreSQL (SQLAlchemy Core).

**Exactly once.** :meth:`Store.apply` writes a batch of `executions` records in one transaction:
first it moves each partition's position to the offset after the batch's last record there
(refusing if the position is already past the batch's first record: another writer got there
first), then it folds the records into the order rows they touch and inserts their fills. A crash
before the commit leaves neither rows nor position; the writer resumes from the position.

Reads never block the writer: SQLite runs in WAL mode, PostgreSQL reads committed rows.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Final

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql.compiler import SQLCompiler

from history.projection import TAKER, FillRow, OrderRow, apply_report, placed_orders, touched_orders
from history.schema import fills, migrate, orders, positions

log = logging.getLogger("history.store")

# Ids per `IN (...)` list: far below SQLite's and PostgreSQL's limits on bound parameters.
ID_CHUNK: Final = 500
# Open orders kept in memory between batches, at most (about 300 bytes each).
MAX_CACHED_ORDERS: Final = 1_000_000
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
SQLITE_MMAP_BYTES: Final = 1 << 30


class PositionMoved(Exception):
    """A partition's stored position is not where the batch starts: another writer applied records."""


@dataclass(frozen=True, slots=True)
class Position:
    """How far the store is in one partition: the next offset to apply and the last record's time."""

    partition: int
    next_offset: int
    last_ts_ns: int | None


@dataclass(slots=True)
class Batch:
    """Consecutive `executions` records of some partitions, decoded: what one transaction applies."""

    records: list[tuple[int, int, Mapping[str, Any]]] = field(
        default_factory=list
    )  # (partition, offset, report)

    # What moves() found, kept: the store and the writer both ask, and a batch holds thousands of records.
    _moves: dict[int, tuple[int, int, int | None]] | None = field(default=None, init=False, repr=False)

    def add(self, partition: int, offset: int, report: Mapping[str, Any]) -> None:
        self.records.append((partition, offset, report))
        self._moves = None

    def moves(self) -> dict[int, tuple[int, int, int | None]]:
        """Each partition's (first offset, offset after the last, last record's time, None if unknown)."""
        if self._moves is None:
            first: dict[int, int] = {}
            after: dict[int, int] = {}
            last_ts: dict[int, int] = {}
            for partition, offset, report in self.records:
                first.setdefault(partition, offset)
                after[partition] = offset + 1
                if ts := report["ts_ns"]:
                    last_ts[partition] = ts
            self._moves = {p: (first[p], after[p], last_ts.get(p)) for p in first}
        return self._moves

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True, slots=True)
class Written:
    """What a batch wrote: order rows inserted and updated, fill rows inserted."""

    orders_inserted: int
    orders_updated: int
    fills_inserted: int


def engine_for(url: str) -> Engine:
    """An engine for the store's URL; SQLite files get WAL mode and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a connection left from before a database restart is replaced, not handed out broken.
    # Positional parameters (%s), as SQLite's (?): rows go to the driver as tuples (``_insert_rows``).
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, paramstyle="format")


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers never wait for the writer. NORMAL: a power cut may lose the last batches, rows and
    # positions together, and they are read again from Kafka; it can never keep one without the other.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Reads map the file rather than copy pages through read() calls: a page of fills is a hundred rows
    # scattered over a table of millions. The mapping is the OS's page cache, shared, not this process's.
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


class Store:
    """The history tables of one database."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self.dialect = self.engine.dialect.name
        # Open orders as committed, by id: the orders the next events name are mostly these, and
        # reading them back from the database is a quarter of a batch's time. Only this store's
        # writer changes rows (a second writer is refused at the positions), so memory stays true.
        self._open_orders: dict[int, OrderRow] = {}
        # Reads outside a transaction: each statement sees what is committed, and on PostgreSQL a read
        # then costs no BEGIN and no ROLLBACK, two of the round trips of a page.
        self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def migrate(self) -> list[int]:
        """Bring the schema to the latest version; the versions applied."""
        with self.engine.begin() as connection:
            return migrate(connection)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(select(1))

    # --- positions -------------------------------------------------------------------------------

    def positions(self, topic: str, connection: Connection | None = None) -> list[Position]:
        """Every stored partition position of ``topic``, by partition."""
        query = _prepared(self.engine.dialect, _positions_query)
        with self._using(connection) as using:
            return [Position(*row) for row in query.rows(using, {"topic": topic})]

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """One connection for the reads of one answer (its freshness, then its rows): one checkout of the
        pool, which on PostgreSQL is a ping and a rollback, each a round trip."""
        with self._reads.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _using(self, connection: Connection | None) -> Iterator[Connection]:
        if connection is not None:
            yield connection
        else:
            with self._reads.connect() as fresh:
                yield fresh

    def add_partitions(self, topic: str, partitions: Iterable[int]) -> None:
        """Start a position at offset 0 for each partition of ``topic`` that has none yet."""
        with self.engine.begin() as connection:
            known = {
                r.partition
                for r in connection.execute(select(positions.c.partition).where(positions.c.topic == topic))
            }
            new = [{"topic": topic, "partition": p, "next_offset": 0} for p in partitions if p not in known]
            if new:
                connection.execute(insert(positions), new)

    def insert_fills(self, rows: Iterable[FillRow]) -> None:
        """Fill rows as they are, in one transaction, outside any batch (the bench's synthetic rows)."""
        with self.engine.begin() as connection:
            _insert_rows(connection, fills, [_fill_values(row) for row in rows])

    # --- the batch write -------------------------------------------------------------------------

    def apply(self, topic: str, batch: Batch) -> Written:
        """Write a batch's rows and move its partitions' positions, in one transaction.

        Raises :class:`PositionMoved` (and writes nothing) when a position is already past where the batch
        starts: another writer applied those records.
        """
        try:
            with self.engine.begin() as connection:
                self._move_positions(connection, topic, batch)
                touched: set[int] = set()
                placed: set[int] = set()
                for _, _, report in batch.records:
                    touched |= touched_orders(report)
                    placed |= placed_orders(report)
                known = self._current_rows(connection, touched - placed)
                existing = set(known)
                new_fills: list[FillRow] = []
                for _, _, report in batch.records:
                    new_fills.extend(apply_report(report, known))
                # The touched rows are replaced whole: two batched statements, where an UPDATE per order
                # would be a round trip per order (PostgreSQL's driver runs an executemany row by row).
                _delete_orders(connection, existing)
                _insert_rows(connection, orders, [_order_values(row) for row in known.values()])
                _insert_rows(connection, fills, [_fill_values(fill) for fill in new_fills])
        except BaseException:
            # The fold changed cached rows in place; what the database holds is what counts now.
            self._open_orders.clear()
            raise
        self._remember_open(known.values())
        return Written(len(known) - len(existing), len(existing), len(new_fills))

    def _move_positions(self, connection: Connection, topic: str, batch: Batch) -> None:
        # Positions first: the row lock (PostgreSQL) or write lock (SQLite) orders writers here.
        for partition, (first, after, last_ts) in batch.moves().items():
            moved = connection.execute(
                update(positions)
                .where(
                    positions.c.topic == topic,
                    positions.c.partition == partition,
                    # At or before: a transaction's commit marker takes an offset no record has.
                    positions.c.next_offset <= first,
                )
                .values(next_offset=after, last_ts_ns=func.coalesce(last_ts, positions.c.last_ts_ns))
            )
            if moved.rowcount != 1:
                raise PositionMoved(f"{topic}[{partition}] is no longer at offset {first}")

    def _current_rows(self, connection: Connection, ids: set[int]) -> dict[int, OrderRow]:
        """The stored rows of ``ids``: open orders from memory, the others read."""
        cached = self._open_orders
        found = {order_id: cached[order_id] for order_id in ids if order_id in cached}
        found.update(_load_orders(connection, ids - found.keys()))
        return found

    def _remember_open(self, rows: Iterable[OrderRow]) -> None:
        """Keep the open orders among ``rows`` (just committed) for the next batches; forget the rest."""
        cached = self._open_orders
        for row in rows:
            if row.remaining:
                cached[row.order_id] = row
            else:
                cached.pop(row.order_id, None)
        while len(cached) > MAX_CACHED_ORDERS:
            del cached[next(iter(cached))]  # the longest cached: read from the database when it is needed

    # --- reads -----------------------------------------------------------------------------------

    def order_page(
        self,
        account: str,
        *,
        symbol: str | None,
        status: str | None,
        start_ns: int | None,
        end_ns: int | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[OrderRow]:
        """The account's orders, newest first (by creation time, then id), below the ``after`` keyset."""
        c = orders.c
        where = [c.account == account]
        where += (
            _optional(c.symbol, symbol)
            + _optional(c.status, status)
            + _time_range(c.created_ns, start_ns, end_ns)
        )
        if after is not None:
            where.append(tuple_(c.created_ns, c.order_id) < tuple_(*after))
        query = (
            select(orders).where(and_(*where)).order_by(c.created_ns.desc(), c.order_id.desc()).limit(limit)
        )
        with self._reads.connect() as connection:
            return [_order_row(r) for r in connection.execute(query)]

    def fill_page(
        self,
        account: str,
        *,
        symbol: str | None,
        order_id: int | None,
        start_ns: int | None,
        end_ns: int | None,
        after: tuple[int, str, int, str] | None,
        limit: int,
        connection: Connection | None = None,
    ) -> list[FillRow]:
        """The account's fills, newest first (time, symbol, trade id, liquidity), below ``after``."""
        filters = {"symbol": symbol, "order_id": order_id, "start_ns": start_ns, "end_ns": end_ns}
        values: dict[str, Any] = {"account": account, "limit": limit, **filters}
        if after is not None:
            values.update(zip(_AFTER, after, strict=True))
        shape = (*(filters[name] is not None for name in _FILL_FILTERS), after is not None)
        query = _prepared(self.engine.dialect, _fill_page_query, *shape)
        with self._using(connection) as using:
            return [FillRow(*row) for row in query.rows(using, values)]

    def trades(self, symbol: str, limit: int) -> list[FillRow]:
        """The symbol's latest trades (their taker rows), newest first."""
        c = fills.c
        query = (
            select(fills)
            .where(c.symbol == symbol, c.liquidity == TAKER)
            .order_by(c.trade_id.desc())
            .limit(limit)
        )
        with self._reads.connect() as connection:
            return [_fill_row(r) for r in connection.execute(query)]

    def candles(self, symbol: str, interval_ns: int, start_ns: int, end_ns: int) -> list[Candle]:
        """The symbol's trades in [start, end) as candles of ``interval_ns``, oldest first (none empty)."""
        c = fills.c
        bucket = (c.ts_ns // interval_ns).label("bucket")
        in_range = and_(c.symbol == symbol, c.liquidity == TAKER, c.ts_ns >= start_ns, c.ts_ns < end_ns)
        query = (
            select(
                bucket,
                func.min(c.price),
                func.max(c.price),
                func.sum(c.qty),
                func.count(),
                func.min(c.trade_id),
                func.max(c.trade_id),
            )
            .where(in_range)
            .group_by(bucket)
            .order_by(bucket)
        )
        with self._reads.connect() as connection:
            groups = list(connection.execute(query))
            ends = {trade_id for g in groups for trade_id in (g[5], g[6])}
            prices = _trade_prices(connection, symbol, ends)
        return [
            Candle(
                int(g[0]) * interval_ns,
                prices[g[5]],
                int(g[2]),
                int(g[1]),
                prices[g[6]],
                int(g[3]),
                int(g[4]),
            )
            for g in groups
        ]


@dataclass(frozen=True, slots=True)
class Candle:
    """One interval of a symbol's trades: prices in ticks, volume in lots."""

    open_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int


# --- reads prepared once per shape -------------------------------------------------------------------
#
# A page is a few hundred microseconds of database work; building the statement, its cache key and
# SQLAlchemy's rows cost more than that on every request. So each shape of a read (which filters it has)
# is compiled once, and its rows are read as plain tuples.


@dataclass(frozen=True, slots=True)
class PreparedRead:
    """A SELECT compiled once for a dialect, with named parameters."""

    sql: str
    names: tuple[str, ...]  # of the positional parameters, in order
    defaults: Mapping[str, Any]  # the values the statement holds itself (an OFFSET 0)

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows for ``values`` (by parameter name; the statement's own defaults fill the rest)."""
        params = {**self.defaults, **values}
        # Through SQLAlchemy's driver call, not a bare cursor: its errors are SQLAlchemyError, which the
        # writer waits out and the API answers with 503.
        result = connection.exec_driver_sql(self.sql, tuple(params[name] for name in self.names))
        return [tuple(row) for row in result.fetchall()]


@functools.cache
def _prepared(dialect: Dialect, build: Callable[..., Select[Any]], *shape: bool) -> PreparedRead:
    compiled = build(*shape).compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler) and compiled.positional, "engine_for: positional parameters"
    defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    return PreparedRead(str(compiled), tuple(compiled.positiontup or ()), defaults)


def _positions_query() -> Select[Any]:
    c = positions.c
    return (
        select(c.partition, c.next_offset, c.last_ts_ns)
        .where(c.topic == bindparam("topic"))
        .order_by(c.partition)
    )


# GET /fills's optional filters, in the order of _fill_page_query's flags; the cursor's keyset names.
_FILL_FILTERS: Final = ("symbol", "order_id", "start_ns", "end_ns")
_AFTER: Final = ("after_ts_ns", "after_symbol", "after_trade_id", "after_liquidity")


def _fill_page_query(symbol: bool, order_id: bool, start: bool, end: bool, after: bool) -> Select[Any]:
    """An account's fills, newest first: the key (time, symbol, trade id, liquidity) ends every index."""
    c = fills.c
    key = (c.ts_ns, c.symbol, c.trade_id, c.liquidity)
    where = [c.account == bindparam("account")]
    if symbol:
        where.append(c.symbol == bindparam("symbol"))
    if order_id:
        where.append(c.order_id == bindparam("order_id"))
    if start:
        where.append(c.ts_ns >= bindparam("start_ns"))
    if end:
        where.append(c.ts_ns < bindparam("end_ns"))
    if after:
        where.append(tuple_(*key) < tuple_(*(bindparam(name) for name in _AFTER)))
    limit = bindparam("limit", type_=Integer)
    return select(fills).where(and_(*where)).order_by(*(k.desc() for k in key)).limit(limit)


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), ID_CHUNK):
        yield ordered[start : start + ID_CHUNK]


def _load_orders(connection: Connection, ids: set[int]) -> dict[int, OrderRow]:
    found: dict[int, OrderRow] = {}
    for chunk in _chunks(ids):
        for row in connection.execute(select(orders).where(orders.c.order_id.in_(chunk))):
            found[row.order_id] = _order_row(row)
    return found


def _trade_prices(connection: Connection, symbol: str, trade_ids: set[int]) -> dict[int, int]:
    c = fills.c
    prices: dict[int, int] = {}
    for chunk in _chunks(trade_ids):
        query = select(c.trade_id, c.price).where(
            c.symbol == symbol, c.liquidity == TAKER, c.trade_id.in_(chunk)
        )
        prices.update((row.trade_id, row.price) for row in connection.execute(query))
    return prices


_ORDER_FIELDS: Final = tuple(OrderRow.__slots__)
_FILL_FIELDS: Final = tuple(FillRow.__slots__)
# Rows travel to the driver as tuples in column order: the tables list their columns as the row types
# list their fields (checked here, at import), so a field added to one and not the other fails at once.
assert tuple(orders.columns.keys()) == _ORDER_FIELDS, "history.schema.orders and OrderRow differ"
assert tuple(fills.columns.keys()) == _FILL_FIELDS, "history.schema.fills and FillRow differ"
_NOTIONAL: Final = _ORDER_FIELDS.index("notional")
_order_fields = attrgetter(*_ORDER_FIELDS)
_fill_values = attrgetter(*_FILL_FIELDS)


def _order_values(row: OrderRow) -> tuple[Any, ...]:
    values = list(_order_fields(row))
    values[_NOTIONAL] = str(row.notional)
    return tuple(values)


def _order_row(row: Row[Any]) -> OrderRow:
    values = dict(row._mapping)
    values["notional"] = int(values["notional"])
    return OrderRow(**values)


def _fill_row(row: Row[Any]) -> FillRow:
    values: tuple[Any, ...] = tuple(row)
    return FillRow(*values)  # the columns in the fields' order (checked above)


def _delete_orders(connection: Connection, ids: set[int]) -> None:
    for chunk in _chunks(ids):
        connection.execute(delete(orders).where(orders.c.order_id.in_(chunk)))


def _insert_rows(connection: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in column order) in the transaction of ``connection``, the fastest way
    each database has.

    PostgreSQL: one ``COPY ... FROM STDIN`` (psycopg streams the rows, escaping every value), where an
    executemany is a statement per row on the server (two thirds of a batch's time). SQLite: one
    driver executemany of SQLAlchemy's statement, compiled once; the rows go to the driver as they
    are, sparing a per-row, per-column pass through SQLAlchemy's parameter processing. Both engines
    take positional parameters (``engine_for``).
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, table, rows)
    else:
        connection.exec_driver_sql(_insert_sql(connection.dialect, table), rows)


def _copy_rows(connection: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    # The driver's own cursor on the connection SQLAlchemy has in its transaction: same transaction.
    columns = ", ".join(connection.dialect.identifier_preparer.quote(column.name) for column in table.columns)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


@functools.cache
def _insert_sql(dialect: Dialect, table: Table) -> str:
    compiled = insert(table).compile(dialect=dialect)
    assert compiled.positional and compiled.positiontup == list(table.columns.keys())
    return str(compiled)


def _optional(column: Any, value: object) -> list[Any]:
    return [] if value is None else [column == value]


def _time_range(column: Any, start_ns: int | None, end_ns: int | None) -> list[Any]:
    """[start, end): the start included, the end not."""
    found = []
    if start_ns is not None:
        found.append(column >= start_ns)
    if end_ns is not None:
        found.append(column < end_ns)
    return found
