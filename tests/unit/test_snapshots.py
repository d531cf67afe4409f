"""State snapshots written by a forked child: the state at the fork, byte for byte, or nothing."""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from matcher.core import MatchingEngine, NewOrder, OrderType, Side, SymbolParams, snapshot
from matcher.recovery import ZLIB_LEVEL, compressed_state, engine_state
from matcher.snapshots import SnapshotWriter, collector_paused, encoded_state_snapshot
from schemas import default_codec

PARTITION = 2
SYMBOL = "ABC"
WAIT_S = 60.0  # a guard only: a snapshot of a few orders takes milliseconds


def engine_with_orders(count: int) -> MatchingEngine:
    engine = MatchingEngine(PARTITION, [SymbolParams(SYMBOL)])
    for offset in range(count):
        side = Side.BUY if offset % 2 else Side.SELL
        price = 100 - offset % 5 if side is Side.BUY else 110 + offset % 5
        engine.apply(
            NewOrder(offset, SYMBOL, f"acct-{offset % 3}", side, OrderType.LIMIT, 1 + offset, price), offset
        )
    return engine


def test_a_forked_snapshot_is_the_state_at_the_fork_byte_for_byte() -> None:
    codec = default_codec()
    engine = engine_with_orders(40)
    expected = encoded_state_snapshot(codec, engine, PARTITION, 40, 39)
    writer = SnapshotWriter(codec, PARTITION)

    pending = writer.start(engine, 40, 39)
    engine.apply(NewOrder(40, SYMBOL, "acct-9", Side.BUY, OrderType.LIMIT, 5, 99), 40)  # the parent goes on
    value = pending.value.result(WAIT_S)
    writer.close()

    assert pending.orders_offset == 40
    assert pending.pid is not None and pending.pid > 0
    assert value == expected
    assert value != encoded_state_snapshot(codec, engine, PARTITION, 40, 39)


def test_the_snapshot_restores_the_engine_it_was_taken_of() -> None:
    codec = default_codec()
    engine = engine_with_orders(25)
    writer = SnapshotWriter(codec, PARTITION)

    value = writer.start(engine, 25, 24).value.result(WAIT_S)
    writer.close()
    assert value is not None
    _, record = codec.decode(value, codec.trusted_writer("StateSnapshot")[1])
    restored = MatchingEngine(PARTITION)
    restored.restore(engine_state(record))

    assert record["orders_offset"] == 25
    assert restored.state_hash() == engine.state_hash()


class BrokenEngine:
    """An engine whose state cannot be serialized (as a bug in ``snapshot`` would make it)."""

    def snapshot(self) -> bytes:
        raise RuntimeError("cannot serialize")


def test_a_child_that_fails_gives_no_snapshot_and_the_parent_goes_on() -> None:
    writer = SnapshotWriter(default_codec(), PARTITION)
    broken: Any = BrokenEngine()

    value = writer.start(broken, 10, 9).value.result(WAIT_S)
    writer.close()

    assert value is None


def test_where_no_child_can_be_made_the_snapshot_is_written_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = default_codec()
    engine = engine_with_orders(12)
    expected = encoded_state_snapshot(codec, engine, PARTITION, 12, 11)
    writer = SnapshotWriter(codec, PARTITION)

    def refused() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr("os.fork", refused)
    pending = writer.start(engine, 12, 11)
    writer.close()

    assert pending.value.done()
    assert pending.pid is None
    assert pending.value.result() == expected


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector enabled for the test, and as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


class CollectorWatchingEngine(MatchingEngine):
    """An engine that notes whether the garbage collector ran free while each piece of its state was made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collector_enabled: set[bool] = set()

    def snapshot_pieces(self) -> Iterator[bytes]:
        for piece in super().snapshot_pieces():
            self.collector_enabled.add(gc.isenabled())
            yield piece


@pytest.mark.usefixtures("collector_on")
def test_a_state_is_encoded_with_the_collector_paused_then_resumed() -> None:
    engine = CollectorWatchingEngine(PARTITION, [SymbolParams(SYMBOL)])

    encoded_state_snapshot(default_codec(), engine, PARTITION, 0, 0)

    assert engine.collector_enabled == {False}
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_after_a_pause() -> None:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_resumes_when_a_restore_fails() -> None:
    with pytest.raises(ValueError), collector_paused():
        MatchingEngine(PARTITION).restore(b"not a snapshot")

    assert gc.isenabled()


def test_a_state_compressed_a_piece_at_a_time_is_the_one_shot_compression_of_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(snapshot, "ROWS_PER_CALL", 4)
    monkeypatch.setattr(snapshot, "PIECE_BYTES", 64)
    pieces = list(engine_with_orders(300).snapshot_pieces())

    assert len(pieces) > 10
    assert compressed_state(pieces) == zlib.compress(b"".join(pieces), ZLIB_LEVEL)
