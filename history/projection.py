"""Orders and fills from ExecutionReports: what the store holds, as a pure function of the log.

An order's row is its latest state (quantities in lots, prices in ticks, times in nanoseconds of
the commands that changed it); a fill is two rows, one per side, named by the symbol, the trade
id and the side's liquidity. The writer folds each record's events into the rows as it reads
them; a record split into parts is folded part by part (each part holds whole events, in order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

TAKER: Final = "TAKER"
MAKER: Final = "MAKER"
OPPOSITE_SIDE: Final = {"BUY": "SELL", "SELL": "BUY"}

NEW: Final = "NEW"
PARTIALLY_FILLED: Final = "PARTIALLY_FILLED"
FILLED: Final = "FILLED"
CANCELLED: Final = "CANCELLED"
EXPIRED: Final = "EXPIRED"
REJECTED: Final = "REJECTED"
STATUSES: Final = (NEW, PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED, REJECTED)

_ACCEPTED = "exchange.OrderAccepted"
_FILLED = "exchange.OrderFilled"
_CANCELLED = "exchange.OrderCancelled"
_EXPIRED = "exchange.OrderExpired"
_AMENDED = "exchange.OrderAmended"
_REJECTED = "exchange.CommandRejected"
# The one refused command that names an order of its own: a new order's would-be id.
_NEW_ORDER_REQUEST = "NewOrder"


@dataclass(slots=True)
class OrderRow:
    """An order as it stands after the events folded so far."""

    order_id: int
    symbol: str
    account: str
    client_order_id: str | None
    side: str | None  # None only for a rejected new order (the rejection does not repeat it)
    order_type: str | None
    time_in_force: str | None
    price: int | None  # ticks; None for a market order
    qty: int  # lots, the filled part included
    filled: int
    remaining: int  # open lots; 0 once the order is done
    notional: int  # the sum of price x qty of its fills, in ticks x lots (average price = notional / filled)
    status: str
    reason: str | None  # why it was cancelled, expired or rejected
    created_ns: int
    updated_ns: int


@dataclass(frozen=True, slots=True)
class FillRow:
    """One side of one match."""

    symbol: str
    trade_id: int
    liquidity: str  # TAKER or MAKER
    order_id: int
    account: str
    client_order_id: str | None
    side: str
    price: int
    qty: int
    counterparty_order_id: int
    ts_ns: int


def touched_orders(report: Mapping[str, Any]) -> set[int]:
    """The ids of the orders an ExecutionReport's events change (to load their rows first)."""
    ids: set[int] = set()
    for name, event in report["events"]:
        if name == _FILLED:
            ids.add(event["taker_order_id"])
            ids.add(event["maker_order_id"])
        elif name != _REJECTED or _names_new_order(event):
            ids.add(event["order_id"])
    return ids


def placed_orders(report: Mapping[str, Any]) -> set[int]:
    """The ids of the orders an ExecutionReport places (accepted, or refused as new): rows no store holds yet.

    An order's placement is its first event in the log (its id is new there), so a reader need not
    look such an order up: whatever it would find is replaced by the placement.
    """
    return {
        event["order_id"]
        for name, event in report["events"]
        if name == _ACCEPTED or (name == _REJECTED and _names_new_order(event))
    }


def apply_report(report: Mapping[str, Any], orders: dict[int, OrderRow]) -> list[FillRow]:
    """Fold a report's events into ``orders`` (by id; new orders are added) and return its fill rows.

    An event of an order not in ``orders`` (its acceptance was never read: a store started on a
    topic whose start was deleted) changes nothing; its fills are kept all the same.
    """
    symbol, ts = report["symbol"], report["ts_ns"]
    fills: list[FillRow] = []
    for name, event in report["events"]:
        if name == _FILLED:
            fills.extend(_fill_rows(symbol, ts, event))
            _fill_order(
                orders.get(event["taker_order_id"]), event["price"], event["qty"], event["taker_leaves"], ts
            )
            _fill_order(
                orders.get(event["maker_order_id"]), event["price"], event["qty"], event["maker_leaves"], ts
            )
        elif name == _ACCEPTED:
            orders[event["order_id"]] = _accepted(symbol, ts, event)
        elif name == _REJECTED:
            if _names_new_order(event):
                orders[event["order_id"]] = _rejected(symbol, ts, event)
        elif (order := orders.get(event["order_id"])) is not None:
            _change(order, name, event, ts)
    return fills


def _names_new_order(rejection: Mapping[str, Any]) -> bool:
    return rejection["request"] == _NEW_ORDER_REQUEST and rejection["order_id"] is not None


def _accepted(symbol: str, ts: int, event: Mapping[str, Any]) -> OrderRow:
    return OrderRow(
        order_id=event["order_id"],
        symbol=symbol,
        account=event["account"],
        client_order_id=event["client_order_id"],
        side=event["side"],
        order_type=event["order_type"],
        time_in_force=event["time_in_force"],
        price=event["price"],
        qty=event["qty"],
        filled=0,
        remaining=event["qty"],
        notional=0,
        status=NEW,
        reason=None,
        created_ns=ts,
        updated_ns=ts,
    )


def _rejected(symbol: str, ts: int, event: Mapping[str, Any]) -> OrderRow:
    return OrderRow(
        order_id=event["order_id"],
        symbol=symbol,
        account=event["account"] or "",
        client_order_id=event["client_order_id"],
        side=None,
        order_type=None,
        time_in_force=None,
        price=None,
        qty=0,
        filled=0,
        remaining=0,
        notional=0,
        status=REJECTED,
        reason=event["reason"],
        created_ns=ts,
        updated_ns=ts,
    )


def _fill_rows(symbol: str, ts: int, event: Mapping[str, Any]) -> tuple[FillRow, FillRow]:
    taker_side = event["aggressor_side"]
    common = {"symbol": symbol, "trade_id": event["event_id"], "price": event["price"], "qty": event["qty"]}
    taker = FillRow(
        **common,
        liquidity=TAKER,
        order_id=event["taker_order_id"],
        account=event["taker_account"],
        client_order_id=event["taker_client_order_id"],
        side=taker_side,
        counterparty_order_id=event["maker_order_id"],
        ts_ns=ts,
    )
    maker = FillRow(
        **common,
        liquidity=MAKER,
        order_id=event["maker_order_id"],
        account=event["maker_account"],
        client_order_id=event["maker_client_order_id"],
        side=OPPOSITE_SIDE[taker_side],
        counterparty_order_id=event["taker_order_id"],
        ts_ns=ts,
    )
    return taker, maker


def _fill_order(order: OrderRow | None, price: int, qty: int, leaves: int, ts: int) -> None:
    if order is None:
        return
    order.filled += qty
    order.notional += price * qty
    order.remaining = leaves
    order.status = FILLED if leaves == 0 else PARTIALLY_FILLED
    order.updated_ns = ts


def _change(order: OrderRow, name: str, event: Mapping[str, Any], ts: int) -> None:
    """A cancel, an expiry or an amendment of a known order."""
    if name == _CANCELLED:
        leaves = event["leaves"]
        if leaves:
            # Self-trade prevention's decrement: the order shrinks and stays open.
            order.qty -= event["cancelled_qty"]
        else:
            order.status, order.reason = CANCELLED, event["reason"]
        order.remaining = leaves
    elif name == _EXPIRED:
        order.remaining, order.status, order.reason = 0, EXPIRED, event["reason"]
    elif name == _AMENDED:
        order.price, order.qty, order.remaining = event["price"], event["qty"], event["leaves"]
    order.updated_ns = ts


def fold(reports: Iterable[Mapping[str, Any]]) -> tuple[dict[int, OrderRow], list[FillRow]]:
    """Every order and fill of a sequence of reports, folded from nothing (for tools and tests)."""
    orders: dict[int, OrderRow] = {}
    fills: list[FillRow] = []
    for report in reports:
        fills.extend(apply_report(report, orders))
    return orders, fills
