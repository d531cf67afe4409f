"""From an `orders` record to the records the matcher produces, without Kafka.

The processor is what the matcher, its recovery and `exchange verify` share, so these tests
are the specification of the matcher's outputs for each kind of command.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

from bench.wireflow import order_record
from matcher.core import SymbolParams, command_id
from matcher.processor import Processor, Record, Tally
from matcher.wire import EVENT_INDEX_BITS
from schemas import decode, default_codec, encode

PARTITION = 3
SYMBOL = "ABC"


def _record(offset: int, value: bytes, headers: list[tuple[str, str | bytes | None]]) -> Message:
    """An `orders` record as the consumer hands it over."""
    return Message(
        topic="orders", partition=PARTITION, offset=offset, key=SYMBOL.encode(), value=value, headers=headers
    )


def _origin(request: str, ts: int = 1_000) -> dict[str, Any]:
    return {"request_id": request, "gateway_id": "gw-1", "reply_partition": 5, "ts_ns": ts}


def _new_order(
    request: str, account: str, cid: str, side: str, qty: int, price: int | None
) -> dict[str, Any]:
    fields = {"account": account, "client_order_id": cid, "side": side, "qty": qty, "price": price}
    return order_record(_origin(request), SYMBOL, **fields)


class Harness:
    """A processor for one partition and the decoded records of each step."""

    def __init__(self) -> None:
        self.processor = Processor(PARTITION, 4, default_codec(), [SymbolParams(SYMBOL)])
        self.offset = 0

    def send(self, schema: str, record: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
        value, headers = encode(schema, record)
        step = self.processor.step(_record(self.offset, value, headers))
        self.offset += 1
        return {r.role: _decoded(r) for r in step.records}


def _decoded(record: Record) -> tuple[str, dict[str, Any]]:
    return decode(record.value, record.headers)


def test_a_resting_order_is_acknowledged_to_its_gateway_and_reported_as_accepted() -> None:
    venue = Harness()

    out = venue.send("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 5, 100))

    _, reply = out["replies"]
    assert (reply["result"], reply["request_id"], reply["partition"], reply["command_offset"]) == (
        "ACCEPTED", "r1", PARTITION, 0,
    )  # fmt: skip
    [order] = reply["orders"]
    assert (order["order_id"], order["status"], order["remaining"]) == (command_id(PARTITION, 0), "NEW", 5)
    _, report = out["executions"]
    assert [name for name, _ in report["events"]] == ["exchange.OrderAccepted"]
    _, update = out["book"]
    [(name, level)] = update["events"]
    assert name == "exchange.LevelChange"
    assert (level["side"], level["price"], level["qty"], level["order_count"]) == ("BUY", 100, 5, 1)


def test_a_cross_reports_both_sides_and_a_public_trade_with_the_fills_event_id() -> None:
    venue = Harness()
    venue.send("NewOrder", _new_order("r1", "alice", "a-1", "SELL", 5, 100))

    out = venue.send("NewOrder", _new_order("r2", "bob", "b-1", "BUY", 3, 101))

    _, reply = out["replies"]
    [fill] = reply["fills"]
    assert (fill["qty"], fill["price"], fill["liquidity"]) == (3, 100, "TAKER")
    assert fill["counterparty_order_id"] == command_id(PARTITION, 0)
    assert reply["orders"][0]["status"] == "FILLED"
    _, report = out["executions"]
    filled = [e for name, e in report["events"] if name == "exchange.OrderFilled"]
    assert [(e["taker_account"], e["maker_account"], e["maker_leaves"]) for e in filled] == [
        ("bob", "alice", 2)
    ]
    trades = [e for name, e in out["book"][1]["events"] if name == "exchange.Trade"]
    assert [t["trade_id"] for t in trades] == [fill["event_id"]]
    assert fill["event_id"] >> EVENT_INDEX_BITS == 1  # the offset of the command that traded


def test_a_self_trade_prevention_cancel_reports_the_prevented_match_on_executions_and_in_the_reply() -> None:
    venue = Harness()
    venue.send("NewOrder", _new_order("r1", "alice", "a-1", "SELL", 5, 100))
    taker = {**_new_order("r2", "alice", "a-2", "BUY", 3, 101), "self_trade_prevention": "CANCEL_BOTH"}

    out = venue.send("NewOrder", taker)

    resting, incoming = command_id(PARTITION, 0), command_id(PARTITION, 1)
    _, report = out["executions"]
    cancels = [e for name, e in report["events"] if name == "exchange.OrderCancelled"]
    assert [(e["order_id"], e["counterparty_order_id"], e["stp_mode"]) for e in cancels] == [
        (resting, incoming, "CANCEL_BOTH"),
        (incoming, resting, "CANCEL_BOTH"),
    ]
    _, reply = out["replies"]
    prevented = reply["prevented_matches"]
    assert [(p["order_id"], p["counterparty_order_id"], p["cancelled_qty"]) for p in prevented] == [
        (resting, incoming, 5),
        (incoming, resting, 3),
    ]
    assert [p["event_id"] for p in prevented] == [e["event_id"] for e in cancels]
    assert reply["fills"] == []


def test_a_cancel_for_another_reason_names_no_prevented_match() -> None:
    venue = Harness()
    venue.send("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 5, 100))

    out = venue.send("CancelAll", {"origin": _origin("r2"), "symbol": SYMBOL, "account": "alice"})

    [(_, cancel)] = out["executions"][1]["events"]
    assert cancel["reason"] == "CANCEL_ALL"
    assert (cancel["counterparty_order_id"], cancel["stp_mode"]) == (None, None)
    assert out["replies"][1]["prevented_matches"] == []


def test_a_rejected_order_is_answered_with_its_reason_and_changes_no_book() -> None:
    venue = Harness()

    out = venue.send("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 0, 100))

    _, reply = out["replies"]
    assert (reply["result"], reply["reason"]) == ("REJECTED", "INVALID_QUANTITY")
    assert "book" not in out


def test_a_cancel_by_client_order_id_answers_with_the_cancelled_order() -> None:
    venue = Harness()
    venue.send("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 5, 100))
    cancel = {
        "origin": _origin("r2"),
        "symbol": SYMBOL,
        "account": "alice",
        "order_id": None,
        "client_order_id": "a-1",
    }

    out = venue.send("CancelOrder", cancel)

    _, reply = out["replies"]
    assert reply["result"] == "ACCEPTED"
    assert [(o["client_order_id"], o["status"]) for o in reply["orders"]] == [("a-1", "CANCELLED")]
    names = [name for name, _ in out["executions"][1]["events"]]
    assert names == ["exchange.OrderCancelled"]


def test_an_undecodable_record_becomes_a_dead_letter_and_nothing_else() -> None:
    venue = Harness()
    record = _record(7, b"\xff\xfe", [("schema", b"NewOrder"), ("schema-version", b"1")])

    step = venue.processor.step(record)

    [dead] = step.records
    assert dead.role == "orders_dlq"
    _, letter = decode(dead.value, dead.headers)
    assert (letter["source_offset"], letter["value"], letter["reason"]) == (7, b"\xff\xfe", "UNDECODABLE")


def test_a_book_snapshot_request_publishes_the_whole_book() -> None:
    venue = Harness()
    venue.send("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 5, 100))
    venue.send("NewOrder", _new_order("r2", "alice", "a-2", "SELL", 4, 105))

    out = venue.send("RequestBookSnapshot", {"origin": _origin("r3"), "symbol": SYMBOL})

    _, snapshot = out["book_snapshots"]
    assert [(lvl["price"], lvl["qty"]) for lvl in snapshot["bids"]] == [(100, 5)]
    assert [(lvl["price"], lvl["qty"]) for lvl in snapshot["asks"]] == [(105, 4)]
    assert snapshot["seq"] == 2


def _listing(partition: int = PARTITION) -> dict[str, Any]:
    return {
        "partition": partition,
        "tick_size": "0.01",
        "lot_size": "1",
        "min_qty": "1",
        "max_qty": "100",
        "reference_price": "10.00",
        "band_percent": "10",
        "status": "trading",
        "max_open_orders": 2,
    }


def test_an_added_symbol_for_another_partition_is_refused() -> None:
    venue = Harness()

    out = venue.send("AddSymbol", {"origin": _origin("r1"), "symbol": "XYZ", "params": _listing(partition=0)})

    assert (out["replies"][1]["result"], out["replies"][1]["reason"]) == ("REJECTED", "NOT_THIS_PARTITION")


def test_an_added_symbol_is_published_with_its_listing_for_gateways_and_relays() -> None:
    venue = Harness()

    out = venue.send("AddSymbol", {"origin": _origin("r1"), "symbol": "XYZ", "params": _listing()})

    assert out["replies"][1]["result"] == "ACCEPTED"
    name, update = out["symbols"]
    assert name == "SymbolUpdate"
    assert (update["symbol"], update["command_offset"], update["halted"]) == ("XYZ", 0, None)
    assert update["params"] == _listing()


def test_an_added_symbols_open_order_limit_rejects_an_accounts_order_beyond_it() -> None:
    venue = Harness()
    venue.send("AddSymbol", {"origin": _origin("r1"), "symbol": "XYZ", "params": _listing()})
    orders = [
        {**_new_order(f"r{i}", "alice", f"a-{i}", "BUY", 1, 900 + i), "symbol": "XYZ"} for i in range(3)
    ]

    replies = [venue.send("NewOrder", order)["replies"][1] for order in orders]

    assert [(r["result"], r["reason"]) for r in replies] == [
        ("ACCEPTED", None),
        ("ACCEPTED", None),
        ("REJECTED", "TOO_MANY_OPEN_ORDERS"),
    ]


def test_a_halt_and_a_resume_are_published_as_status_changes_keyed_apart_from_the_listing() -> None:
    venue = Harness()

    halt_command = encode("HaltSymbol", {"origin": _origin("r1"), "symbol": SYMBOL})
    halt = venue.processor.step(_record(0, *halt_command))
    venue.offset = 1
    resumed = venue.send("ResumeSymbol", {"origin": _origin("r2"), "symbol": SYMBOL})

    [record] = [r for r in halt.records if r.role == "symbols"]
    assert record.key == f"{SYMBOL}#status".encode()
    assert decode(record.value, record.headers)[1]["halted"] is True
    assert (resumed["symbols"][1]["halted"], resumed["symbols"][1]["params"]) == (False, None)


def test_a_refused_admin_command_publishes_nothing() -> None:
    venue = Harness()

    out = venue.send("ResumeSymbol", {"origin": _origin("r1"), "symbol": SYMBOL})  # it is not halted

    assert out["replies"][1]["reason"] == "SYMBOL_NOT_HALTED"
    assert "symbols" not in out


def test_replaying_the_same_records_gives_the_same_bytes() -> None:
    first, second = Harness(), Harness()
    commands = [
        ("NewOrder", _new_order("r1", "alice", "a-1", "SELL", 5, 100)),
        ("NewOrder", _new_order("r2", "bob", "b-1", "BUY", 7, 101)),
        ("NewOrder", _new_order("r3", "carol", "c-1", "SELL", 2, None)),
    ]

    outputs = [[first.send(s, r), second.send(s, r)] for s, r in commands]

    assert all(a == b for a, b in outputs)


def test_a_batch_tallies_commands_by_kind_and_result_fills_and_the_books_it_changed() -> None:
    venue = Harness()
    commands = [
        _new_order("r1", "alice", "a-1", "SELL", 5, 100),
        _new_order("r2", "bob", "b-1", "BUY", 3, 101),  # one fill (a match), of 3 lots
        _new_order("r3", "bob", "b-2", "BUY", 0, 101),  # rejected: no quantity
    ]
    messages = [_record(offset, *encode("NewOrder", command)) for offset, command in enumerate(commands)]
    garbage = _record(3, b"\xff", [("schema", b"NewOrder"), ("version", b"1")])
    records: list[Record] = []
    tally = Tally(set(), 0)

    venue.processor.step_all([*messages, garbage], records, tally)

    assert tally.commands == {("NewOrder", "accepted"): 2, ("NewOrder", "rejected"): 1, ("DLQ", "dlq"): 1}
    assert (tally.fills, tally.traded_lots) == (1, 3)
    assert (tally.touched, tally.last_ts) == ({SYMBOL}, 1_000)
    assert [r.role for r in records].count("replies") == 3
    assert records[-1].role == "orders_dlq"


# --- every command kind through the compiled processor ("matcher hardening", native builds) --------
# `./dev test` builds the compiled modules first and tests/conftest.py installs their loader, so the
# processor here is the compiled one; the first assertion of each test fails (never skips) otherwise.


def _every_command_kind() -> list[tuple[str, dict[str, Any]]]:
    """One of each command the processor accepts (the three kinds of Query), each one accepted."""
    by_client_id = {"symbol": SYMBOL, "account": "alice", "order_id": None, "client_order_id": "a-1"}
    query = {**by_client_id, "depth": None}
    return [
        ("NewOrder", _new_order("r1", "alice", "a-1", "BUY", 5, 100)),
        ("NewOrder", _new_order("r2", "bob", "b-1", "SELL", 2, 100)),  # trades 2 against a-1
        ("AmendOrder", {"origin": _origin("r3"), **by_client_id, "new_qty": 4, "new_price": None}),
        ("Query", {"origin": _origin("r4"), **query, "kind": "ORDER"}),
        ("Query", {"origin": _origin("r5"), **query, "kind": "OPEN_ORDERS"}),
        ("Query", {"origin": _origin("r6"), **query, "kind": "BOOK"}),
        ("RequestBookSnapshot", {"origin": _origin("r7"), "symbol": SYMBOL}),
        ("CancelOrder", {"origin": _origin("r8"), **by_client_id}),
        ("NewOrder", _new_order("r9", "alice", "a-2", "SELL", 4, 105)),
        ("CancelAll", {"origin": _origin("r10"), "symbol": SYMBOL, "account": "alice"}),
        ("HaltSymbol", {"origin": _origin("r11"), "symbol": SYMBOL}),
        ("ResumeSymbol", {"origin": _origin("r12"), "symbol": SYMBOL}),
        ("AddSymbol", {"origin": _origin("r13"), "symbol": "XYZ", "params": _listing()}),
    ]


def _every_command_kind_records() -> list[list[Record]]:
    """The records each command of :func:`_every_command_kind` makes, sent in order to one processor."""
    processor = Processor(PARTITION, 4, default_codec(), [SymbolParams(SYMBOL)])
    commands = [_record(offset, *encode(*command)) for offset, command in enumerate(_every_command_kind())]
    return [processor.step(command).records for command in commands]


def _assert_the_processor_is_compiled() -> None:
    import matcher.processor
    import matcher.wire
    from runtime import native

    modules = (matcher.processor, matcher.wire)
    assert (native.status(), [m.__name__ for m in modules if not native.is_compiled(m)]) == ("compiled", [])


def test_every_command_kind_goes_through_the_compiled_processor_to_its_reply() -> None:
    from matcher.processor import COMMANDS

    _assert_the_processor_is_compiled()
    commands = _every_command_kind()
    assert {schema for schema, _ in commands} == COMMANDS
    assert {record["kind"] for schema, record in commands if schema == "Query"} == {
        "ORDER",
        "OPEN_ORDERS",
        "BOOK",
    }

    steps = _every_command_kind_records()

    replies = [[_decoded(r)[1] for r in records if r.role == "replies"] for records in steps]
    assert [[(r["request_id"], r["result"], r["reason"]) for r in step] for step in replies] == [
        [(record["origin"]["request_id"], "ACCEPTED", None)] for _, record in commands
    ]


def test_the_compiled_processor_writes_what_the_plain_sources_write_for_every_command_kind() -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from runtime import native

    _assert_the_processor_is_compiled()
    plain = (
        "import json\nfrom runtime import native\nimport matcher.processor\n"
        "from tests.unit.test_processor import _every_command_kind_records\n"
        "steps = [[repr(tuple(r)) for r in records] for records in _every_command_kind_records()]\n"
        "print(json.dumps([native.status(), native.is_compiled(matcher.processor), steps]))"
    )

    compiled = [[repr(tuple(r)) for r in records] for records in _every_command_kind_records()]
    result = subprocess.run(
        [sys.executable, "-c", plain],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, native.ENV_SWITCH: "0"},
    )

    assert json.loads(result.stdout) == [f"off ({native.ENV_SWITCH}=0)", False, compiled]
