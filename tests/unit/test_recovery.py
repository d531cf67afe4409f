"""The `orders` range a recovery or a verify replays must be whole, from its first offset to its last.

The log is kept forever and written without transactions, so its offsets have no gaps: a record
missing at either end means the state at the committed offset cannot be rebuilt, and that is
an error naming the offsets, never a shorter replay.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Message

from matcher.processor import record_offset
from matcher.recovery import RecoveryError, orders_in_range

WHERE = "orders[0]"


def _log(offsets: range) -> Iterator[Message]:
    """Records at ``offsets``, as a reader of the partition hands them over."""
    return (Message(topic="orders", partition=0, offset=offset, value=b"") for offset in offsets)


def _replayed(offsets: range, start: int, end: int) -> list[int]:
    return [record_offset(message) for message in orders_in_range(_log(offsets), WHERE, start, end)]


def test_the_records_from_the_start_offset_up_to_the_committed_one_are_replayed() -> None:
    assert _replayed(range(10, 30), start=10, end=20) == list(range(10, 20))


def test_nothing_is_read_when_the_snapshot_is_at_the_committed_offset() -> None:
    def never_read() -> Iterator[Message]:
        raise AssertionError("the log was read")
        yield  # a generator

    assert list(orders_in_range(never_read(), WHERE, 20, 20)) == []


def test_reading_stops_at_the_last_committed_record() -> None:
    read: list[int] = []

    def log() -> Iterator[Message]:
        for message in _log(range(0, 1_000)):
            read.append(record_offset(message))
            yield message

    list(orders_in_range(log(), WHERE, 0, 5))

    assert read == [0, 1, 2, 3, 4]


def test_a_log_starting_after_the_snapshot_offset_is_an_error_naming_the_deleted_offsets() -> None:
    with pytest.raises(
        RecoveryError, match=r"orders\[0\] starts at offset 15.* offsets 10\.\.14 were deleted"
    ):
        _replayed(range(15, 30), start=10, end=20)


def test_a_log_ending_before_the_snapshot_offset_is_an_error() -> None:
    # A reader asked for an offset beyond the log's end starts again at the log's start.
    with pytest.raises(RecoveryError, match=r"has no offset 10 \(reading there restarted at offset 0\)"):
        _replayed(range(0, 5), start=10, end=20)


def test_a_log_ending_before_the_committed_offset_is_an_error_naming_the_missing_offsets() -> None:
    with pytest.raises(RecoveryError, match=r"ends at offset 17, .* offsets 17\.\.19 are missing"):
        _replayed(range(10, 17), start=10, end=20)


def test_an_empty_log_with_commands_committed_is_an_error() -> None:
    with pytest.raises(RecoveryError, match=r"no record at or after offset 10, but commands up to offset 19"):
        _replayed(range(0), start=10, end=20)


def test_a_gap_before_the_last_committed_record_is_an_error() -> None:
    offsets = [*range(10, 18), 21]
    log = (Message(topic="orders", partition=0, offset=offset) for offset in offsets)

    with pytest.raises(RecoveryError, match=r"ends at offset 18, .* offsets 18\.\.19 are missing"):
        list(orders_in_range(log, WHERE, 10, 20))
