"""The engine's own checks: validate() finds broken invariants, state_hash(), snapshot() and restore()."""

from __future__ import annotations

import marshal
import struct

import pytest

from matcher.core import (
    Cancel,
    Halt,
    InvariantViolation,
    MatchingEngine,
    OrderAccepted,
    OrderStatus,
    SnapshotError,
    SymbolParams,
    reasons,
    snapshot,
)
from matcher.core.snapshot import MAGIC
from tests.unit.core.venue import SYMBOL, Venue, buy, sell

# These tests reach into the engine's private state on purpose: only a corrupted state shows
# that validate() can fail.


def before_v3(books: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Snapshot book rows as versions 1 and 2 wrote them: without max_open_orders (after halted)."""
    return [(*book[:6], *book[7:]) for book in books]


def busy_venue() -> Venue:
    venue = Venue(SymbolParams(SYMBOL, band_bps=2000, reference_price=100), SymbolParams("XYZ"))
    venue.place(buy(5, 99, client_order_id="a-1"))
    venue.place(buy(3, 99, account="bob"))
    venue.place(buy(2, 98))
    venue.place(sell(4, 101, account="bob", client_order_id="b-1"))
    venue.send(sell(6, 99, account="carol", client_order_id="c-1"))
    venue.place(sell(7, 120, symbol="XYZ"))
    venue.send(Halt(9, "XYZ"))
    return venue


def test_validate_finds_a_level_total_that_is_not_the_sum_of_its_orders() -> None:
    engine = busy_venue().engine
    engine._books[SYMBOL].bids.levels[-99].total += 1

    with pytest.raises(InvariantViolation, match="total"):
        engine.validate()


def test_validate_finds_a_crossed_book() -> None:
    engine = busy_venue().engine
    level = engine._books[SYMBOL].asks.levels[101]
    order = level[0]
    del engine._books[SYMBOL].asks.levels[101]
    level.price = order.price = 90
    engine._books[SYMBOL].asks.levels[90] = level
    engine._books[SYMBOL].asks.heap.append(90)

    with pytest.raises(InvariantViolation, match="crossed"):
        engine.validate()


def test_validate_finds_an_order_missing_from_the_id_index() -> None:
    engine = busy_venue().engine
    engine._orders.pop(next(iter(engine._orders)))

    with pytest.raises(InvariantViolation, match="index"):
        engine.validate()


def test_validate_finds_orders_out_of_time_priority() -> None:
    engine = busy_venue().engine
    level = engine._books[SYMBOL].bids.levels[-98]
    level.append(level[0])  # the same order twice, the second time out of order
    level.total += level[0].leaves

    with pytest.raises(InvariantViolation, match=r"FIFO|twice"):
        engine.validate()


def test_state_hash_depends_on_the_state_only() -> None:
    first, second = busy_venue(), busy_venue()
    assert first.engine.state_hash() == second.engine.state_hash()

    second.send(Cancel(10, SYMBOL, "alice", 2))

    assert first.engine.state_hash() != second.engine.state_hash()


def test_restore_of_a_snapshot_gives_the_same_state_and_the_same_answers() -> None:
    original = busy_venue()
    copy = Venue(partition=0)
    copy.engine.restore(original.engine.snapshot())
    copy.offset = original.offset

    assert copy.engine.state_hash() == original.engine.state_hash()
    copy.engine.validate()
    for command in (
        buy(5, 99, client_order_id="a-1"),  # a repeated client order id
        sell(10, 98, account="dave", client_order_id="d-1"),
        Cancel(20, SYMBOL, "bob", 3),
        buy(1, 150, symbol="XYZ"),  # still halted
    ):
        assert copy.send(command) == original.send(command)
    assert copy.engine.state_hash() == original.engine.state_hash()
    assert copy.engine.book_depth(SYMBOL) == original.engine.book_depth(SYMBOL)
    assert copy.engine.symbols() == original.engine.symbols()


def test_restore_replaces_everything_the_engine_held() -> None:
    empty = MatchingEngine(0).snapshot()
    engine = busy_venue().engine

    engine.restore(empty)

    assert engine.resting_count() == 0 and engine.symbols() == []
    assert engine.state_hash() == MatchingEngine(0).state_hash()


def test_snapshot_is_versioned_and_restore_refuses_anything_else() -> None:
    data = busy_venue().engine.snapshot()
    engine = MatchingEngine(0)
    assert data.startswith(MAGIC)

    other_version = data[: len(MAGIC)] + struct.pack(">H", 99) + data[len(MAGIC) + 2 :]
    for bad in (b"", b"not a snapshot", data[:-1], data + b"x", other_version):
        with pytest.raises(SnapshotError):
            engine.restore(bad)


def test_restore_refuses_a_snapshot_of_another_partition() -> None:
    data = MatchingEngine(2).snapshot()

    with pytest.raises(ValueError, match="partition"):
        MatchingEngine(0).restore(data)


def test_a_rejected_order_with_malformed_fields_and_a_client_order_id_still_snapshots() -> None:
    venue = Venue()
    venue.send(buy(1, 100, client_order_id="odd")._replace(side=object(), price=[1], qty=2.5))

    copy = MatchingEngine(0)
    copy.restore(venue.engine.snapshot())

    state = copy.order_by_client_id("alice", "odd")
    assert state is not None and (state.side, state.price, state.qty, state.status) == (
        None,
        None,
        0,
        "REJECTED",
    )


def test_a_restored_engine_forgets_done_orders_at_the_same_offset_as_the_original() -> None:
    original = Venue(client_id_memory=5)
    order = original.place(buy(5, 100, client_order_id="c-1"))
    original.send(Cancel(2, SYMBOL, "alice", order))  # done at offset 1
    restored = Venue(client_id_memory=5)
    restored.engine.restore(original.engine.snapshot())
    restored.offset = original.offset = 5  # offset 5 still remembers it, 6 forgets it

    retries = [venue.send(buy(5, 100, client_order_id="c-1"))[0] for venue in (original, restored)]
    reuses = [venue.send(buy(5, 100, client_order_id="c-1"))[0] for venue in (original, restored)]

    assert [(state.order_id, state.status) for state in retries] == [(order, OrderStatus.CANCELLED)] * 2
    assert [type(event) for event in reuses] == [OrderAccepted, OrderAccepted]
    assert original.engine.state_hash() == restored.engine.state_hash()


def big_venue() -> Venue:
    """Levels of one order and of many, on both sides, and done orders kept by client order id."""
    venue = busy_venue()
    for n in range(30):
        venue.place(buy(1 + n % 4, 90 - n % 7, account=f"acct-{n % 5}", client_order_id=f"big-{n}"))
        venue.place(sell(2, 105 + n % 10, account="erin"))
    venue.send(Cancel(40, SYMBOL, "acct-0", venue.engine.order_by_client_id("acct-0", "big-0").order_id))
    return venue


def _old_format(version: int, payload: tuple[object, ...]) -> bytes:
    """A snapshot as versions 1 and 2 framed it: the length in front of the payload."""
    body = marshal.dumps(payload, 2)
    return MAGIC + struct.pack(">HQ", version, len(body)) + body


def _payload(data: bytes) -> tuple[object, ...]:
    """The payload of a (version 3) snapshot: between the version and the length behind it."""
    payload = marshal.loads(data[len(MAGIC) + 2 : -8])
    assert isinstance(payload, tuple)
    return payload


def test_a_version_1_snapshot_restores_its_done_orders_as_finished_at_offset_0() -> None:
    venue = Venue(client_id_memory=5)
    venue.send(buy(0, 100, client_order_id="c-1"))  # rejected, kept by its client order id
    partition, books, done = _payload(venue.engine.snapshot())
    version_1 = _old_format(1, (partition, before_v3(books), [(a, c, state) for a, c, _, state in done]))
    restored = Venue(client_id_memory=5)

    restored.engine.restore(version_1)

    assert restored.engine.state_hash() == venue.engine.state_hash()


def test_validate_finds_an_order_missing_from_the_account_index() -> None:
    engine = busy_venue().engine
    book = engine._books[SYMBOL]
    book.by_account["bob"].popitem()

    with pytest.raises(InvariantViolation, match="index by account"):
        engine.validate()


def test_a_snapshot_keeps_each_symbols_open_order_limit_and_the_accounts_orders() -> None:
    venue = Venue(SymbolParams(SYMBOL, max_open_orders=2))
    venue.place(buy(1, 90))
    venue.place(buy(1, 91))
    restored = Venue()

    restored.engine.restore(venue.engine.snapshot())
    restored.offset = venue.offset

    assert restored.engine.symbols() == [SymbolParams(SYMBOL, max_open_orders=2)]
    assert restored.send(buy(1, 92))[0].reason == reasons.TOO_MANY_OPEN_ORDERS
    assert restored.engine.state_hash() == venue.engine.state_hash()


def test_a_version_2_snapshot_restores_its_symbols_with_no_open_order_limit() -> None:
    # Its state was built by commands that met no limit: a replay from it must meet none either.
    venue = Venue(SymbolParams(SYMBOL))
    venue.place(buy(1, 90))
    partition, books, done = _payload(venue.engine.snapshot())
    version_2 = _old_format(2, (partition, before_v3(books), done))
    restored = Venue()

    restored.engine.restore(version_2)

    assert restored.engine.symbols() == [SymbolParams(SYMBOL, max_open_orders=0)]
    assert restored.engine.state_hash() == venue.engine.state_hash()
    assert [o.price for o in restored.engine.open_orders("alice")] == [90]


def test_a_version_2_snapshot_with_its_length_in_front_restores_the_same_state() -> None:
    original = busy_venue()
    partition, books, done = _payload(original.engine.snapshot())
    version_2 = _old_format(2, (partition, before_v3(books), done))
    restored = MatchingEngine(0)

    restored.restore(version_2)

    assert restored.state_hash() == original.engine.state_hash()
    restored.validate()


def test_a_snapshot_is_the_marshal_of_one_tuple_however_it_is_cut_into_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = big_venue().engine
    whole = engine.snapshot()
    monkeypatch.setattr(snapshot, "ROWS_PER_CALL", 3)
    monkeypatch.setattr(snapshot, "PIECE_BYTES", 1)

    pieces = list(engine.snapshot_pieces())

    assert len(pieces) > 10
    assert b"".join(pieces) == whole
    payload = whole[len(MAGIC) + 2 : -8]
    assert marshal.dumps(marshal.loads(payload), 2) == payload
    assert struct.unpack(">Q", whole[-8:]) == (len(payload),)
