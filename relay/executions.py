"""The private channel: an ``ExecutionReport``'s events as each account may see them. Pure.

An account sees its own orders only: a fill goes to the taker and to the maker as two messages,
each naming that side's order, side and liquidity, never the other account or its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.protocol import Units, encode

_OPPOSITE = {"BUY": "SELL", "SELL": "BUY"}


def account_messages(report: Mapping[str, Any], units: Units) -> list[tuple[str, bytes]]:
    """(account, ``execution`` message) for every event of the report, in order."""
    out: list[tuple[str, bytes]] = []
    base = {"type": "execution", "symbol": report["symbol"], "ts": report["ts_ns"]}
    for name, event in report["events"]:
        for account, fields in _views(name.rpartition(".")[2], event, units):
            out.append((account, encode({**base, **fields})))
    return out


def _views(kind: str, e: Mapping[str, Any], units: Units) -> list[tuple[str, dict[str, Any]]]:
    if kind == "OrderFilled":
        return [_fill(e, units, "taker"), _fill(e, units, "maker")]
    account = e.get("account")
    if account is None:
        return []  # a rejection of a command that named no account
    view: dict[str, Any] = {
        "event": _EVENT_NAMES[kind],
        "event_id": e["event_id"],
        "order_id": e.get("order_id"),
        "client_order_id": e.get("client_order_id"),
    }
    if kind == "OrderAccepted":
        view |= {
            "side": e["side"].lower(),
            "order_type": e["order_type"].lower(),
            "time_in_force": e["time_in_force"],
            "price": None if e["price"] is None else units.price(e["price"]),
            "qty": units.qty(e["qty"]),
        }
    elif kind == "CommandRejected":
        view |= {"request": e["request"], "reason": e["reason"]}
    elif kind == "OrderCancelled":
        view |= {"cancelled_qty": units.qty(e["cancelled_qty"]), "leaves": units.qty(e["leaves"])}
        view["reason"] = e["reason"]
    elif kind == "OrderExpired":
        view |= {"expired_qty": units.qty(e["expired_qty"]), "reason": e["reason"]}
    elif kind == "OrderAmended":
        view |= {
            "price": units.price(e["price"]),
            "qty": units.qty(e["qty"]),
            "leaves": units.qty(e["leaves"]),
            "priority_kept": e["priority_kept"],
        }
    return [(account, view)]


def _fill(e: Mapping[str, Any], units: Units, role: str) -> tuple[str, dict[str, Any]]:
    taker = role == "taker"
    return e[f"{role}_account"], {
        "event": "fill",
        "event_id": e["event_id"],
        "order_id": e[f"{role}_order_id"],
        "client_order_id": e[f"{role}_client_order_id"],
        "side": (e["aggressor_side"] if taker else _OPPOSITE[e["aggressor_side"]]).lower(),
        "liquidity": "taker" if taker else "maker",
        "price": units.price(e["price"]),
        "qty": units.qty(e["qty"]),
        "leaves": units.qty(e[f"{role}_leaves"]),
    }


_EVENT_NAMES = {
    "OrderAccepted": "accepted",
    "CommandRejected": "rejected",
    "OrderCancelled": "cancelled",
    "OrderExpired": "expired",
    "OrderAmended": "amended",
}
