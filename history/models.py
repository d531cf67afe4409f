"""What the history API answers: rows in the API's terms (decimal strings, ids as strings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from history.projection import MAKER, FillRow, OrderRow
from history.store import Candle, Position
from runtime.symbols import Symbol

NANOS_PER_MILLI = 1_000_000


class ErrorOut(BaseModel):
    """Every refusal: a machine-readable code and one line (the gateway's shape)."""

    code: str = Field(examples=["BAD_CURSOR"])
    message: str = Field(examples=["the cursor is not one this API gave out"])


class AsOf(BaseModel):
    """How fresh an answer is: it holds every execution before these offsets of `executions`."""

    offsets: dict[str, int] = Field(description="Per partition: the next offset the store will apply.")
    ts_ns: int | None = Field(description="The time of the newest command applied (null: none yet).")


class HistoryOrderOut(BaseModel):
    """An order's latest state as the store holds it."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: Literal["buy", "sell"] | None = Field(description="Null for a rejected new order.")
    type: Literal["limit", "market"] | None
    time_in_force: str | None
    price: str | None
    quantity: str
    filled: str
    remaining: str
    average_price: str | None = Field(description="Of all the order's fills; null when it has none.")
    status: str = Field(examples=["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED", "REJECTED"])
    reason: str | None = Field(description="Why it was cancelled, expired or rejected.")
    created_at_ns: int
    updated_at_ns: int


class OrdersPage(BaseModel):
    """A page of the account's orders, newest first."""

    orders: list[HistoryOrderOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null at the end."
    )
    as_of: AsOf


class HistoryFillOut(BaseModel):
    """One of the account's fills (one side of a trade)."""

    trade_id: str
    symbol: str
    order_id: str
    client_order_id: str | None
    side: Literal["buy", "sell"]
    price: str
    quantity: str
    liquidity: Literal["maker", "taker"]
    counterparty_order_id: str
    ts_ns: int


class FillsPage(BaseModel):
    """A page of the account's fills, newest first."""

    fills: list[HistoryFillOut]
    next_cursor: str | None
    as_of: AsOf


class TradeOut(BaseModel):
    """A public trade."""

    trade_id: str
    price: str
    quantity: str
    taker_side: Literal["buy", "sell"]
    ts_ns: int


class TradesOut(BaseModel):
    """A symbol's latest trades, newest first."""

    symbol: str
    trades: list[TradeOut]
    as_of: AsOf


class CandleOut(BaseModel):
    """One interval of trades: prices and volume as decimal strings."""

    open_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    trades: int


class CandlesOut(BaseModel):
    """A symbol's candles, oldest first."""

    symbol: str
    interval: str
    candles: list[CandleOut]
    as_of: AsOf


def as_of(stored: list[Position]) -> AsOf:
    """The freshness of an answer from the store's positions."""
    times = [p.last_ts_ns for p in stored if p.last_ts_ns is not None]
    return AsOf(offsets={str(p.partition): p.next_offset for p in stored}, ts_ns=max(times, default=None))


def _side(side: str | None) -> Literal["buy", "sell"] | None:
    return None if side is None else "buy" if side == "BUY" else "sell"


def order_out(symbol: Symbol, row: OrderRow) -> HistoryOrderOut:
    """An order row in the API's terms: decimal strings, the average price of all its fills."""
    return HistoryOrderOut(
        order_id=str(row.order_id),
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=_side(row.side),
        type=None if row.order_type is None else "limit" if row.order_type == "LIMIT" else "market",
        time_in_force=row.time_in_force,
        price=None if row.price is None else symbol.ticks_to_price(row.price),
        quantity=symbol.lots_to_qty(row.qty),
        filled=symbol.lots_to_qty(row.filled),
        remaining=symbol.lots_to_qty(row.remaining),
        average_price=symbol.average_price(row.notional, row.filled),
        status=row.status,
        reason=row.reason,
        created_at_ns=row.created_ns,
        updated_at_ns=row.updated_ns,
    )


def fill_out(symbol: Symbol, row: FillRow) -> dict[str, Any]:
    """A fill row (one side of a trade) in the API's terms: a :class:`HistoryFillOut` as JSON values.

    A plain dict, not the model: a page holds up to 1,000 rows built from the store's own rows, and
    validating each one again cost a third of a request (``test_api`` checks the shape against the model).
    """
    return {
        "trade_id": str(row.trade_id),
        "symbol": row.symbol,
        "order_id": str(row.order_id),
        "client_order_id": row.client_order_id,
        "side": "buy" if row.side == "BUY" else "sell",
        "price": symbol.ticks_to_price(row.price),
        "quantity": symbol.lots_to_qty(row.qty),
        "liquidity": "maker" if row.liquidity == MAKER else "taker",
        "counterparty_order_id": str(row.counterparty_order_id),
        "ts_ns": row.ts_ns,
    }


def trade_out(symbol: Symbol, row: FillRow) -> dict[str, Any]:
    """A trade from its taker row: a :class:`TradeOut` as JSON values (a plain dict, as :func:`fill_out`)."""
    return {
        "trade_id": str(row.trade_id),
        "price": symbol.ticks_to_price(row.price),
        "quantity": symbol.lots_to_qty(row.qty),
        "taker_side": "buy" if row.side == "BUY" else "sell",
        "ts_ns": row.ts_ns,
    }


def candle_out(symbol: Symbol, candle: Candle) -> CandleOut:
    """A candle in the API's terms (its open time in milliseconds)."""
    return CandleOut(
        open_time_ms=candle.open_ns // NANOS_PER_MILLI,
        open=symbol.ticks_to_price(candle.open),
        high=symbol.ticks_to_price(candle.high),
        low=symbol.ticks_to_price(candle.low),
        close=symbol.ticks_to_price(candle.close),
        volume=symbol.lots_to_qty(candle.volume),
        trades=candle.trades,
    )
