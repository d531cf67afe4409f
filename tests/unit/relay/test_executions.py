"""The private channel's views: each account sees its own side of every event, never the other's."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from relay.executions import account_messages
from relay.protocol import Units

UNITS = Units(Decimal("0.01"), Decimal("0.001"))


def _report(*events: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "symbol": "BTC-USD",
        "command_offset": 3,
        "ts_ns": 7,
        "part": 0,
        "parts": 1,
        "events": list(events),
    }


FILL = {
    "event_id": 11, "price": 10_000, "qty": 2_000, "aggressor_side": "BUY",
    "taker_order_id": 1, "taker_account": "alice", "taker_client_order_id": "a1", "taker_leaves": 0,
    "maker_order_id": 2, "maker_account": "bob", "maker_client_order_id": "b1", "maker_leaves": 500,
}  # fmt: skip


def _views(*events: tuple[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(account, json.loads(data)) for account, data in account_messages(_report(*events), UNITS)]


def test_a_fill_goes_to_each_side_as_its_own_order() -> None:
    (taker, taker_view), (maker, maker_view) = _views(("exchange.OrderFilled", FILL))

    assert (taker, taker_view["order_id"], taker_view["side"], taker_view["liquidity"]) == (
        "alice",
        1,
        "buy",
        "taker",
    )
    assert (maker, maker_view["order_id"], maker_view["side"], maker_view["liquidity"]) == (
        "bob",
        2,
        "sell",
        "maker",
    )
    assert (maker_view["price"], maker_view["qty"], maker_view["leaves"]) == ("100.00", "2.000", "0.500")


def test_no_view_names_the_other_account_or_its_order() -> None:
    for account, view in _views(("exchange.OrderFilled", FILL)):
        other = {"alice", "bob"} - {account}
        assert not other & {str(value) for value in view.values()}
        assert {"a1", "b1"} & {view["client_order_id"]} == {"a1" if account == "alice" else "b1"}


def test_an_accepted_order_has_its_terms_as_strings() -> None:
    accepted = {
        "event_id": 1, "order_id": 5, "account": "alice", "client_order_id": None, "side": "SELL",
        "order_type": "LIMIT", "time_in_force": "GTC", "price": 10_050, "qty": 1,
    }  # fmt: skip

    [(account, view)] = _views(("exchange.OrderAccepted", accepted))

    assert account == "alice"
    assert {k: view[k] for k in ("type", "event", "side", "price", "qty", "ts")} == {
        "type": "execution", "event": "accepted", "side": "sell", "price": "100.50", "qty": "0.001", "ts": 7,
    }  # fmt: skip


def test_a_rejection_without_an_account_goes_to_nobody() -> None:
    rejected = {
        "event_id": 1, "request": "Cancel", "account": None, "order_id": None, "client_order_id": None,
        "reason": "UNKNOWN_ORDER",
    }  # fmt: skip

    assert _views(("exchange.CommandRejected", rejected)) == []
