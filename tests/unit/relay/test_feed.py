"""Where the relay starts reading `book` at boot, and when a gap calls for a step back."""

from __future__ import annotations

from relay.app import StepBacks
from relay.feed import SnapshotSeen, book_start_ms

NOW_MS = 10_000_000


def test_the_start_is_before_the_oldest_snapshot_of_the_partition_minus_the_margin() -> None:
    symbols = {"A": 0, "B": 0, "C": 1}
    snapshots = {"A": SnapshotSeen(5, 0, 9_000_000), "B": SnapshotSeen(7, 0, 9_500_000)}

    start = book_start_ms(0, symbols, snapshots, now_ms=NOW_MS, tape_ms=0, margin_ms=1_000)

    assert start == 9_000_000 - 1_000


def test_the_tape_reaches_further_back_when_it_asks_for_more() -> None:
    snapshots = {"A": SnapshotSeen(5, 0, 9_000_000)}

    start = book_start_ms(0, {"A": 0}, snapshots, now_ms=NOW_MS, tape_ms=5_000_000, margin_ms=0)

    assert start == 5_000_000


def test_a_symbol_without_a_snapshot_means_reading_the_partition_from_its_beginning() -> None:
    snapshots = {"A": SnapshotSeen(5, 0, 9_000_000)}

    assert book_start_ms(0, {"A": 0, "B": 0}, snapshots, now_ms=NOW_MS, tape_ms=0, margin_ms=0) is None
    assert book_start_ms(1, {"A": 0, "B": 0}, snapshots, now_ms=NOW_MS, tape_ms=0, margin_ms=0) == NOW_MS


def test_a_gap_asks_for_one_step_back_and_its_echoes_ask_for_none() -> None:
    steps = StepBacks()

    asked = [
        steps.needed(0, 0),
        steps.needed(0, 0),
        steps.needed(1, 0),
        steps.needed(0, 1),
        steps.needed(0, 1),
    ]

    assert asked == [True, False, True, True, False]
