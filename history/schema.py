"""The store's tables, their indexes, and the numbered migrations that make them.

The same SQLAlchemy Core tables serve SQLite and PostgreSQL. Quantities are lots and prices
ticks (BIGINT, exact); an order's notional (ticks x lots, which can pass 2**63) is its integer
as text. Every read the API makes has an index whose columns lead with its equality filters and
end with its order (the keyset a cursor resumes from), so a page costs the same on page 1,000 as
on page 1.

Migrations are a numbered list applied in order inside one transaction each; the version
reached is kept in ``history_schema``. A new schema version appends a migration, never edits one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    select,
    text,
    update,
)

metadata = MetaData()

# One row per order: its latest state.
orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(32), nullable=False),
    Column("account", String(64), nullable=False),
    Column("client_order_id", String(64)),
    Column("side", String(4)),
    Column("order_type", String(8)),
    Column("time_in_force", String(3)),
    Column("price", BigInteger),
    Column("qty", BigInteger, nullable=False),
    Column("filled", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("notional", String(48), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    # GET /orders/history: by account, optionally by symbol or status, newest first.
    Index("ix_orders_account_created", "account", "created_ns", "order_id"),
    Index("ix_orders_account_symbol_created", "account", "symbol", "created_ns", "order_id"),
    Index("ix_orders_account_status_created", "account", "status", "created_ns", "order_id"),
)

# One row per side of each fill.
fills = Table(
    "fills",
    metadata,
    Column("symbol", String(32), nullable=False),
    Column("trade_id", BigInteger, nullable=False),
    Column("liquidity", String(5), nullable=False),
    Column("order_id", BigInteger, nullable=False),
    Column("account", String(64), nullable=False),
    Column("client_order_id", String(64)),
    Column("side", String(4), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("counterparty_order_id", BigInteger, nullable=False),
    Column("ts_ns", BigInteger, nullable=False),
    # A trade id is unique within its partition, so with the symbol (one partition) everywhere.
    PrimaryKeyConstraint("symbol", "trade_id", "liquidity"),
    # GET /fills: by account, optionally by symbol or order, newest first.
    Index("ix_fills_account_time", "account", "ts_ns", "symbol", "trade_id", "liquidity"),
    Index("ix_fills_account_symbol_time", "account", "symbol", "ts_ns", "trade_id", "liquidity"),
    Index("ix_fills_order", "order_id", "ts_ns", "symbol", "trade_id", "liquidity"),
    # GET /candles (a time range of a symbol's taker rows). GET /trades (a symbol's newest trade ids)
    # reads the primary key backwards, every other row a taker's.
    Index("ix_fills_symbol_time", "symbol", "liquidity", "ts_ns"),
)

# Where the store is in each partition of `executions`: written in the transaction of the rows.
positions = Table(
    "positions",
    metadata,
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("last_ts_ns", BigInteger),
    PrimaryKeyConstraint("topic", "partition"),
)

schema_version = Table("history_schema", metadata, Column("version", Integer, nullable=False))


def _version_1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[orders, fills, positions])


def _version_2(connection: Connection) -> None:
    # It served GET /trades as the primary key (symbol, trade id, liquidity) does, and cost every fill
    # row one more index entry to write. (A database made at version 1 by this code never had it.)
    connection.execute(text(f"DROP INDEX IF EXISTS {REDUNDANT_TRADES_INDEX}"))


REDUNDANT_TRADES_INDEX: Final = "ix_fills_symbol_trades"

# (version, what it does, how): applied in order, each once.
MIGRATIONS: Final[list[tuple[int, str, Callable[[Connection], None]]]] = [
    (1, "orders, fills and positions with their indexes", _version_1),
    (2, "drop fills' index of trade ids, which the primary key serves", _version_2),
]
LATEST_VERSION: Final = MIGRATIONS[-1][0]


def current_version(connection: Connection) -> int:
    """The schema version the database has (0 for an empty database)."""
    schema_version.create(connection, checkfirst=True)
    found = connection.execute(select(schema_version.c.version)).scalar()
    return 0 if found is None else int(found)


def migrate(connection: Connection) -> list[int]:
    """Apply the migrations the database lacks, in order; the versions applied.

    A database newer than this code is refused: its rows may mean something this code does not know.
    """
    version = current_version(connection)
    if version > LATEST_VERSION:
        raise RuntimeError(
            f"the history database is at schema version {version}, newer than {LATEST_VERSION}"
        )
    applied = []
    for number, _, step in MIGRATIONS:
        if number > version:
            step(connection)
            applied.append(number)
    if applied and version == 0:
        connection.execute(insert(schema_version).values(version=applied[-1]))
    elif applied:
        connection.execute(update(schema_version).values(version=applied[-1]))
    return applied
