"""The history fold against the matcher's own word: after a random flow through the real processor
(limits, markets, IOC/FOK, post-only, amends, cancels, every self-trade prevention mode), each order's
row equals what a Query of that order answers, and its fills add up to its filled quantity."""

from __future__ import annotations

import random
from typing import Any

from confluent_kafka import Message

from bench.wireflow import gateway_origin, order_record
from history.projection import FillRow, OrderRow, apply_report, fold, touched_orders
from matcher.core import SymbolParams
from matcher.processor import Processor
from schemas import decode, default_codec, encode

SYMBOL = "ABC"
ACCOUNTS = ("alice", "bob", "carol")
STP_MODES = ("NONE", "CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH", "DECREMENT_AND_CANCEL")


class Venue:
    """One partition's processor, keeping every ExecutionReport it writes (split ones part by part)."""

    def __init__(self) -> None:
        self.processor = Processor(0, 1, default_codec(), [SymbolParams(SYMBOL)])
        self.offset = 0
        self.reports: list[dict[str, Any]] = []

    def send(self, schema: str, record: dict[str, Any]) -> dict[str, Any]:
        value, headers = encode(schema, record)
        message = Message(
            topic="orders", partition=0, offset=self.offset, key=SYMBOL.encode(), value=value, headers=headers
        )
        step = self.processor.step(message)
        self.offset += 1
        reply: dict[str, Any] = {}
        for out in step.records:
            _, decoded = decode(out.value, out.headers)
            if out.role == "executions":
                self.reports.append(decoded)
            elif out.role == "replies":
                reply = decoded
        return reply


def _random_command(
    rng: random.Random, seq: int, placed: list[tuple[int, str]]
) -> tuple[str, dict[str, Any]]:
    origin = gateway_origin(seq)
    account = rng.choice(ACCOUNTS)
    roll = rng.random()
    if placed and roll < 0.15:
        order_id, owner = rng.choice(placed)
        return "CancelOrder", {
            "origin": origin,
            "symbol": SYMBOL,
            "account": owner,
            "order_id": order_id,
            "client_order_id": None,
        }
    if placed and roll < 0.3:
        order_id, owner = rng.choice(placed)
        amend = {
            "new_qty": rng.choice([None, rng.randint(1, 12)]),
            "new_price": rng.choice([None, rng.randint(95, 105)]),
        }
        return "AmendOrder", {
            "origin": origin,
            "symbol": SYMBOL,
            "account": owner,
            "order_id": order_id,
            "client_order_id": None,
            **amend,
        }
    market = rng.random() < 0.1
    record = order_record(
        origin, SYMBOL, account=account, client_order_id=f"c{seq}", side=rng.choice(["BUY", "SELL"]),
        qty=rng.randint(1, 10), price=None if market else rng.randint(95, 105),
    )  # fmt: skip
    if not market:
        record["time_in_force"] = rng.choice(["GTC", "GTC", "GTC", "IOC", "FOK"])
        record["post_only"] = record["time_in_force"] == "GTC" and rng.random() < 0.1
    record["self_trade_prevention"] = rng.choice(STP_MODES)
    return "NewOrder", record


def _run_flow(commands: int, seed: int) -> tuple[Venue, dict[int, tuple[str, str]]]:
    """The venue after a random flow, and each accepted order's account and client order id."""
    rng = random.Random(seed)
    venue = Venue()
    placed: list[tuple[int, str]] = []
    accounts: dict[int, tuple[str, str]] = {}
    for seq in range(commands):
        schema, record = _random_command(rng, seq, placed)
        reply = venue.send(schema, record)
        if schema == "NewOrder" and reply["result"] == "ACCEPTED":
            order_id = reply["orders"][0]["order_id"]
            placed.append((order_id, record["account"]))
            accounts[order_id] = (record["account"], record["client_order_id"])
    return venue, accounts


def _matcher_state(venue: Venue, owner: tuple[str, str], seq: int) -> dict[str, Any]:
    """The matcher's answer to a Query of the order (by client order id: it remembers finished ones so)."""
    account, client_order_id = owner
    query = {"origin": gateway_origin(seq), "symbol": SYMBOL, "account": account, "kind": "ORDER",
             "order_id": None, "client_order_id": client_order_id, "depth": None}  # fmt: skip
    state: dict[str, Any] = venue.send("Query", query)["orders"][0]
    return state


def test_every_order_row_equals_the_matchers_answer_for_that_order() -> None:
    venue, accounts = _run_flow(3_000, seed=7)
    orders, _ = fold(venue.reports)

    for seq, (order_id, owner) in enumerate(accounts.items(), start=10_000):
        state, row = _matcher_state(venue, owner, seq), orders[order_id]
        assert (row.status, row.qty, row.filled, row.remaining, row.price) == (
            state["status"], state["qty"], state["filled"], state["remaining"], state["price"]
        ), order_id  # fmt: skip
    assert {row.status for row in orders.values()} >= {
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELLED",
        "EXPIRED",
    }


def test_an_orders_fills_add_up_to_its_filled_quantity_and_notional() -> None:
    venue, _ = _run_flow(2_000, seed=8)
    orders, fills = fold(venue.reports)

    for order in orders.values():
        mine = [f for f in fills if f.order_id == order.order_id]
        assert sum(f.qty for f in mine) == order.filled
        assert sum(f.qty * f.price for f in mine) == order.notional
    assert len({(f.trade_id, f.liquidity) for f in fills}) == len(fills)


def test_a_report_split_into_parts_folds_to_the_same_rows_as_whole() -> None:
    venue, _ = _run_flow(1_000, seed=9)
    whole_orders, whole_fills = fold(venue.reports)
    parts: list[dict[str, Any]] = []
    for report in venue.reports:
        events = report["events"]
        parts += [{**report, "events": events[i : i + 1]} for i in range(len(events))]

    assert fold(parts) == (whole_orders, whole_fills)


def test_a_rejected_new_order_is_a_row_with_its_reason() -> None:
    report = {"symbol": SYMBOL, "ts_ns": 5, "events": [("exchange.CommandRejected", {
        "event_id": 1, "request": "NewOrder", "account": "alice", "order_id": 42, "client_order_id": "x",
        "reason": "PRICE_OUT_OF_BAND"})]}  # fmt: skip
    orders: dict[int, OrderRow] = {}

    fills: list[FillRow] = apply_report(report, orders)

    assert fills == [] and touched_orders(report) == {42}
    assert (orders[42].status, orders[42].reason, orders[42].account) == (
        "REJECTED",
        "PRICE_OUT_OF_BAND",
        "alice",
    )
