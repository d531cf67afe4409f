"""The REST API's JSON shapes (pydantic, at the edge only) and their conversion to and from the wire.

Prices and quantities are decimal strings both ways; ids that can exceed 2**53 (order and trade
ids) are strings too, so a JavaScript client never rounds them. Requests refuse unknown fields
and values of the wrong JSON type; the decimal strings are converted exactly by the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runtime.symbols import DEFAULT_MAX_OPEN_ORDERS, MAX_DECIMAL_CHARS, MAX_OPEN_ORDERS, Symbol

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

Side = Literal["buy", "sell"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
SelfTradePrevention = Literal["none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement_and_cancel"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewOrderRequest(Strict):
    """An order to place."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"symbol": "BTC-USD", "side": "buy", "type": "limit", "price": "65000.00", "quantity": "0.5"},
                {
                    "symbol": "BTC-USD",
                    "side": "sell",
                    "type": "market",
                    "quantity": "0.1",
                    "time_in_force": "IOC",
                },
            ]
        },
    )

    symbol: str = Field(max_length=32, examples=["BTC-USD"])
    side: Side
    type: OrderType = "limit"
    price: str | None = Field(default=None, max_length=MAX_DECIMAL_CHARS, examples=["65000.00"])
    quantity: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["0.5"])
    time_in_force: TimeInForce = "GTC"
    post_only: bool = False
    self_trade_prevention: SelfTradePrevention = "none"
    client_order_id: str | None = Field(
        default=None,
        pattern=CLIENT_ORDER_ID_PATTERN,
        description="Unique among the account's orders; a retry with the same id is answered, never doubled.",
    )


class AmendRequest(Strict):
    """A new price and/or a new total quantity for an open order."""

    price: str | None = Field(default=None, max_length=MAX_DECIMAL_CHARS, examples=["64990.00"])
    quantity: str | None = Field(default=None, max_length=MAX_DECIMAL_CHARS, examples=["0.4"])


class SymbolListing(Strict):
    """A symbol to add, with its trading parameters as the registry file writes them."""

    symbol: str = Field(max_length=32, examples=["ADA-USD"])
    partition: int = Field(ge=0, examples=[1])
    tick_size: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["0.0001"])
    lot_size: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["1"])
    min_qty: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["1"])
    max_qty: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["1000000"])
    reference_price: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["0.4500"])
    band_percent: str = Field(max_length=MAX_DECIMAL_CHARS, examples=["10"])
    status: Literal["trading", "halted"] = "trading"
    max_open_orders: int = Field(
        default=DEFAULT_MAX_OPEN_ORDERS,
        ge=0,
        le=MAX_OPEN_ORDERS,
        examples=[DEFAULT_MAX_OPEN_ORDERS],
        description="Orders one account may have resting on the symbol (0: no limit).",
    )


class FillOut(BaseModel):
    trade_id: str
    price: str
    quantity: str
    liquidity: Literal["maker", "taker"]


class PreventedMatchOut(BaseModel):
    """A match self-trade prevention stopped: one of the account's own orders was cut instead of trading.

    Named after the prevented-match reports of exchanges ("EXPIRED_IN_MATCH"): the order cut, the
    order it would have traded with, how much of it was cancelled and the mode that decided.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "11544872091288577",
                    "order_id": "281474976710661",
                    "counterparty_order_id": "281474976710650",
                    "quantity": "0.5",
                    "self_trade_prevention": "cancel_newest",
                }
            ]
        }
    )

    event_id: str = Field(description="The id of the order's OrderCancelled execution event.")
    order_id: str = Field(description="The order that was cut (this order, or the resting one).")
    counterparty_order_id: str = Field(description="The other order of the prevented match.")
    quantity: str = Field(description="How much of order_id was cancelled.")
    self_trade_prevention: SelfTradePrevention = Field(description="The incoming order's mode.")


class OrderOut(BaseModel):
    """An order as the matcher knows it."""

    order_id: str | None = Field(description="Null while the order is pending.")
    client_order_id: str
    symbol: str
    side: Side | None = None
    type: OrderType | None = None
    price: str | None = None
    quantity: str | None = None
    filled: str | None = None
    remaining: str | None = None
    average_price: str | None = Field(
        default=None, description="Of the fills in this answer; null when there are none."
    )
    status: str = Field(examples=["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED", "pending"])
    created_at_ns: int | None = None
    fills: list[FillOut] = []
    prevented_matches: list[PreventedMatchOut] = Field(
        default=[],
        description="The matches self-trade prevention stopped while this command ran, in order.",
    )
    request_id: str


class OrdersOut(BaseModel):
    symbol: str
    orders: list[OrderOut]


class CancelAllOut(BaseModel):
    symbol: str
    status: Literal["accepted", "pending"]
    request_id: str


class LevelOut(BaseModel):
    price: str
    quantity: str
    orders: int


class BookOut(BaseModel):
    symbol: str
    seq: int = Field(description="The symbol's book sequence number this view corresponds to.")
    bids: list[LevelOut]
    asks: list[LevelOut]


class SymbolOut(BaseModel):
    symbol: str
    partition: int
    tick_size: str
    lot_size: str
    min_qty: str
    max_qty: str
    reference_price: str
    band_percent: str
    status: Literal["trading", "halted"]
    max_open_orders: int = Field(
        description="Orders one account may have resting on the symbol (0: no limit)."
    )


class AdminOut(BaseModel):
    symbol: str
    status: Literal["accepted", "pending"]
    request_id: str


class ErrorOut(BaseModel):
    """Every error: a machine-readable code and one line for a person."""

    code: str = Field(examples=["OFF_TICK"])
    message: str = Field(examples=["price 1.001 is not a multiple of the tick size 0.01"])


# --- from the wire -------------------------------------------------------------------------------


def order_out(
    symbol: Symbol,
    state: dict[str, Any],
    fills: list[dict[str, Any]],
    request_id: str,
    prevented_matches: Sequence[dict[str, Any]] = (),
) -> OrderOut:
    """An OrderState (and the fills and prevented matches of its reply) in the API's terms."""
    fills_out = [fill_out(symbol, f) for f in fills]
    return OrderOut(
        order_id=str(state["order_id"]),
        client_order_id=state["client_order_id"],
        symbol=symbol.name,
        side="buy" if state["side"] == "BUY" else "sell",
        type="limit" if state["order_type"] == "LIMIT" else "market",
        price=None if state["price"] is None else symbol.ticks_to_price(state["price"]),
        quantity=symbol.lots_to_qty(state["qty"]),
        filled=symbol.lots_to_qty(state["filled"]),
        remaining=symbol.lots_to_qty(state["remaining"]),
        average_price=average_price(symbol, fills),
        status=state["status"],
        created_at_ns=state["ts_ns"],
        fills=fills_out,
        prevented_matches=[prevented_match_out(symbol, p) for p in prevented_matches],
        request_id=request_id,
    )


def fill_out(symbol: Symbol, fill: dict[str, Any]) -> FillOut:
    return FillOut(
        trade_id=str(fill["event_id"]),
        price=symbol.ticks_to_price(fill["price"]),
        quantity=symbol.lots_to_qty(fill["qty"]),
        liquidity="maker" if fill["liquidity"] == "MAKER" else "taker",
    )


def prevented_match_out(symbol: Symbol, prevented: dict[str, Any]) -> PreventedMatchOut:
    return PreventedMatchOut(
        event_id=str(prevented["event_id"]),
        order_id=str(prevented["order_id"]),
        counterparty_order_id=str(prevented["counterparty_order_id"]),
        quantity=symbol.lots_to_qty(prevented["cancelled_qty"]),
        self_trade_prevention=prevented["stp_mode"].lower(),
    )


def average_price(symbol: Symbol, fills: list[dict[str, Any]]) -> str | None:
    """The quantity-weighted price of ``fills`` (see :meth:`Symbol.average_price`)."""
    return symbol.average_price(sum(f["price"] * f["qty"] for f in fills), sum(f["qty"] for f in fills))


def book_out(symbol: Symbol, book: dict[str, Any]) -> BookOut:
    def levels(side: list[dict[str, Any]]) -> list[LevelOut]:
        return [
            LevelOut(
                price=symbol.ticks_to_price(lvl["price"]),
                quantity=symbol.lots_to_qty(lvl["qty"]),
                orders=lvl["order_count"],
            )
            for lvl in side
        ]

    return BookOut(symbol=symbol.name, seq=book["seq"], bids=levels(book["bids"]), asks=levels(book["asks"]))


def symbol_out(symbol: Symbol) -> SymbolOut:
    return SymbolOut(symbol=symbol.name, **symbol.to_params())
