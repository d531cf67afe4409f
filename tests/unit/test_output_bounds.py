"""No output record over the size bound: large outputs are split into parts, deterministically.

A command's outputs are as large as what it touches (a cancel-all of every order of an account,
a sweep through the book, an open-orders query, a book snapshot). The broker refuses a record
over the topic's limit, which would fail the transaction after every restart and stall the
partition; so the processor cuts such a record into parts (schemas.parts), and whatever still
cannot be written goes to the dead-letter topic while the partition moves on.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Message

from bench.wireflow import order_record
from matcher.core import OrderAccepted, SymbolParams
from matcher.processor import MAX_ID_CHARS, Processor, Record
from matcher.wire import MAX_EVENTS_PER_COMMAND, Decoded, Origin, UnwritableOutput, outputs_of
from schemas import decode, default_codec, encode
from schemas.parts import PartJoiner, join_parts

PARTITION = 0
SYMBOL = "ABC"
SMALL_BOUND = 2048
RESTING = 1000  # enough orders that every list output is several times the small bound


def _origin(request: str) -> dict[str, Any]:
    return {"request_id": request, "gateway_id": "gw-1", "reply_partition": 0, "ts_ns": 1_000}


def _new_order(
    request: str, account: str, side: str, qty: int, price: int | None, cid: str = ""
) -> dict[str, Any]:
    fields = {"account": account, "client_order_id": cid or request, "side": side, "qty": qty, "price": price}
    return order_record(_origin(request), SYMBOL, **fields)


class Venue:
    """A processor fed encoded `orders` records; ``max_record_bytes`` as the test sets it."""

    def __init__(self, max_record_bytes: int) -> None:
        params = SymbolParams(SYMBOL)
        self.processor = Processor(PARTITION, 1, default_codec(), [params], max_record_bytes=max_record_bytes)
        self.offset = 0

    def send(self, schema: str, record: dict[str, Any]) -> list[Record]:
        value, headers = encode(schema, record)
        message = Message(
            topic="orders", partition=PARTITION, offset=self.offset, value=value, headers=headers
        )
        self.offset += 1
        return self.processor.step(message).records

    def rest_orders(self, account: str, count: int) -> None:
        """``count`` one-lot sells of ``account``, each at a price level of its own."""
        for i in range(count):
            self.send("NewOrder", _new_order(f"rest-{i}", account, "SELL", 1, 1_000 + i))


def _decoded(records: list[Record], role: str) -> list[dict[str, Any]]:
    return [decode(r.value, r.headers)[1] for r in records if r.role == role]


def _same_flow(command: tuple[str, dict[str, Any]]) -> tuple[list[Record], list[Record]]:
    """The records of ``command`` after the same resting book, under the small bound and the real one."""
    bounded, unbounded = Venue(SMALL_BOUND), Venue(1 << 30)
    for venue in (bounded, unbounded):
        venue.rest_orders("alice", RESTING)
    return bounded.send(*command), unbounded.send(*command)


def test_a_cancel_all_over_the_bound_is_split_into_parts_that_join_to_the_whole() -> None:
    split, whole = _same_flow(("CancelAll", {"origin": _origin("ca"), "symbol": SYMBOL, "account": "alice"}))

    assert max(len(r.value) for r in split) <= SMALL_BOUND
    for role, schema in (("executions", "ExecutionReport"), ("book", "BookUpdate")):
        parts = _decoded(split, role)
        [unsplit] = _decoded(whole, role)
        assert len(parts) > 1
        assert [(p["part"], p["parts"]) for p in parts] == [(i, len(parts)) for i in range(len(parts))]
        assert join_parts(schema, parts) == unsplit
    assert len(_decoded(whole, "executions")[0]["events"]) == RESTING


def test_book_deltas_keep_a_gap_free_seq_across_parts() -> None:
    split, _ = _same_flow(("CancelAll", {"origin": _origin("ca"), "symbol": SYMBOL, "account": "alice"}))

    seqs = [event["seq"] for part in _decoded(split, "book") for _, event in part["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + RESTING))


def test_a_sweep_reply_carries_every_fill_across_its_parts() -> None:
    split, whole = _same_flow(("NewOrder", _new_order("sweep", "bob", "BUY", RESTING, None)))

    parts = _decoded(split, "replies")
    [unsplit] = _decoded(whole, "replies")
    assert len(parts) > 1 and all(p["request_id"] == "sweep" for p in parts)
    assert len(unsplit["fills"]) == RESTING
    assert join_parts("Reply", parts) == unsplit


def test_a_reply_that_prevents_many_self_trades_carries_every_prevented_match_across_its_parts() -> None:
    sweep = {**_new_order("stp", "alice", "BUY", RESTING, None), "self_trade_prevention": "CANCEL_OLDEST"}
    split, whole = _same_flow(("NewOrder", sweep))

    parts = _decoded(split, "replies")
    [unsplit] = _decoded(whole, "replies")
    assert len(parts) > 1
    assert len(unsplit["prevented_matches"]) == RESTING
    assert join_parts("Reply", parts) == unsplit


def test_an_open_orders_reply_is_split_and_joined() -> None:
    query = {
        "origin": _origin("q"),
        "symbol": SYMBOL,
        "account": "alice",
        "kind": "OPEN_ORDERS",
        "order_id": None,
        "client_order_id": None,
        "depth": None,
    }
    split, whole = _same_flow(("Query", query))

    parts = _decoded(split, "replies")
    assert len(parts) > 1
    assert join_parts("Reply", parts) == _decoded(whole, "replies")[0]


def test_a_book_snapshot_is_split_under_keys_that_compaction_keeps_apart() -> None:
    request = {"origin": _origin("snap"), "symbol": SYMBOL}
    split, whole = _same_flow(("RequestBookSnapshot", request))

    snapshots = [r for r in split if r.role == "book_snapshots"]
    assert len(snapshots) > 1
    assert [r.key for r in snapshots] == [SYMBOL.encode()] + [
        f"{SYMBOL}#{i}".encode() for i in range(1, len(snapshots))
    ]
    assert (
        join_parts("BookSnapshot", _decoded(split, "book_snapshots")) == _decoded(whole, "book_snapshots")[0]
    )


def test_a_replay_splits_into_the_same_bytes() -> None:
    cancel_all = ("CancelAll", {"origin": _origin("ca"), "symbol": SYMBOL, "account": "alice"})
    first, _ = _same_flow(cancel_all)
    again, _ = _same_flow(cancel_all)

    assert first == again


def test_outputs_under_the_bound_are_one_record_each_without_part_numbers_set() -> None:
    venue = Venue(SMALL_BOUND)

    records = venue.send("NewOrder", _new_order("one", "alice", "SELL", 1, 1_000))

    assert sorted(r.role for r in records) == ["book", "executions", "replies"]
    assert all((d["part"], d["parts"]) == (0, 1) for d in _decoded(records, "replies"))


def test_an_item_over_the_bound_sends_the_command_to_the_dead_letters_and_the_partition_goes_on() -> None:
    venue = Venue(150)  # below what one order state with a long client order id takes
    records = venue.send("NewOrder", _new_order("big", "alice", "SELL", 1, 1_000, cid="c" * MAX_ID_CHARS))

    [dead] = records
    assert dead.role == "orders_dlq"
    letter = decode(dead.value, dead.headers)[1]
    assert (letter["reason"], letter["source_offset"]) == ("OUTPUT_TOO_LARGE", 0)
    assert venue.send("CancelAll", {"origin": _origin("next"), "symbol": SYMBOL, "account": "nobody"})


@pytest.mark.parametrize(
    ("field", "where"),
    [("client_order_id", None), ("account", None), ("request_id", "origin"), ("gateway_id", "origin")],
)
def test_an_identifier_over_the_limit_is_a_dead_letter(field: str, where: str | None) -> None:
    venue = Venue(SMALL_BOUND)
    order = _new_order("r", "alice", "SELL", 1, 1_000)
    (order[where] if where else order)[field] = "x" * (MAX_ID_CHARS + 1)

    [dead] = venue.send("NewOrder", order)

    letter = decode(dead.value, dead.headers)[1]
    assert (dead.role, letter["reason"]) == ("orders_dlq", "FIELD_TOO_LONG")
    assert field in letter["error"]


def test_an_identifier_at_the_limit_is_a_command() -> None:
    venue = Venue(1 << 20)

    records = venue.send(
        "NewOrder", _new_order("r", "a" * MAX_ID_CHARS, "SELL", 1, 1_000, cid="c" * MAX_ID_CHARS)
    )

    assert _decoded(records, "replies")[0]["result"] == "ACCEPTED"


def test_a_command_with_more_events_than_ids_can_number_is_unwritable() -> None:
    accepted = OrderAccepted.of(1, SYMBOL, 1, "alice", None, 0, 0, 0, 1, 1)
    decoded = Decoded("NewOrder", Origin("r", "gw", 0, 1), None, SYMBOL)

    with pytest.raises(UnwritableOutput) as raised:
        outputs_of(decoded, 7, [accepted] * (MAX_EVENTS_PER_COMMAND + 1), PARTITION)

    assert raised.value.reason == "TOO_MANY_EVENTS"


# --- joining parts -------------------------------------------------------------------------------


def _reply_part(part: int, parts: int, fills: list[int]) -> dict[str, Any]:
    return {
        "request_id": "r",
        "part": part,
        "parts": parts,
        "orders": [],
        "fills": fills,
        "prevented_matches": [],
        "book": None,
    }


def test_a_joiner_hands_back_the_whole_once_every_part_came_in_any_order_and_repeated() -> None:
    joiner = PartJoiner("Reply")

    assert joiner.add("r", _reply_part(1, 3, [3, 4])) is None
    assert joiner.add("r", _reply_part(1, 3, [3, 4])) is None  # the early and the committed copy
    assert joiner.add("r", _reply_part(0, 3, [1, 2])) is None
    whole = joiner.add("r", _reply_part(2, 3, [5]))

    assert whole is not None and whole["fills"] == [1, 2, 3, 4, 5]
    assert (whole["part"], whole["parts"], joiner.pending()) == (0, 1, 0)


def test_a_record_never_split_passes_through_a_joiner() -> None:
    record = _reply_part(0, 1, [1])

    assert PartJoiner("Reply").add("r", record) is record


def test_a_joiner_keeps_a_bounded_number_of_incomplete_records() -> None:
    joiner = PartJoiner("Reply", max_pending=2)

    for ident in ("a", "b", "c", "d"):
        joiner.add(ident, _reply_part(0, 2, [1]))

    assert joiner.pending() == 2
    assert joiner.add("a", _reply_part(1, 2, [2])) is None  # its first part was let go
