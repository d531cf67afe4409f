"""Where a transaction's time goes (matcher.timing), and the pipeline bench's use of it."""

import logging

import pytest

from bench.pipeline import EARLY_PHASE, PHASES, Delivery, percentile_ms, phase_breakdown
from matcher.timing import CommandMoments, Take, TimingLog, TransactionTimes
from runtime.progress import Progress

MS = 1_000_000


def transaction(first: int, end: int, start_ms: int) -> TransactionTimes:
    """Commands first..end-1 in two takes 1 ms apart, then a commit whose steps take 1, 2, 3, 4 ms."""
    middle = (first + end) // 2
    t = start_ms * MS
    return TransactionTimes(
        takes=[Take(first, middle, t, t + MS), Take(middle, end, t + 2 * MS, t + 3 * MS)],
        begun_ns=t + 4 * MS,
        produced_ns=t + 6 * MS,
        offsets_sent_ns=t + 9 * MS,
        committed_ns=t + 13 * MS,
    )


def test_a_transactions_phases_run_from_its_first_take_to_its_commit() -> None:
    times = transaction(0, 10, start_ms=100)

    assert times.phases_ms() == {
        "apply": 3.0,
        "batch_wait": 1.0,
        "produce": 2.0,
        "send_offsets": 3.0,
        "commit": 4.0,
    }
    assert times.total_s() == pytest.approx(0.013)
    assert times.transaction_phases_s() == pytest.approx(
        {"produce": 0.002, "send_offsets": 0.003, "commit": 0.004}
    )


def test_a_command_is_found_by_its_offset_in_the_take_that_carried_it() -> None:
    timings = TimingLog()
    timings.add(transaction(0, 10, start_ms=0))
    timings.add(transaction(10, 20, start_ms=100))

    assert timings.moments(12) == CommandMoments(100 * MS, 101 * MS, 104 * MS, 106 * MS, 109 * MS, 113 * MS)
    assert timings.moments(17) is not None and timings.moments(17).taken_ns == 102 * MS
    assert timings.moments(20) is None  # not committed yet


def test_commands_committed_again_after_an_abort_take_the_new_transactions_times() -> None:
    timings = TimingLog()
    timings.add(transaction(0, 10, start_ms=0))
    timings.add(transaction(10, 20, start_ms=100))  # then the engine is rebuilt at 10 and replays
    timings.add(transaction(10, 14, start_ms=500))

    moments = timings.moments(11)
    assert moments is not None and moments.taken_ns == 500 * MS
    assert timings.moments(16) is None
    assert len(timings.transactions(0)) == 2


def test_the_phase_breakdown_follows_each_paced_command_through_the_matcher() -> None:
    timings = TimingLog()
    timings.add(transaction(0, 10, start_ms=100))
    sent, seen = 98 * MS, 120 * MS  # the commit ends at 113 ms
    committed = [Delivery(offset, sent, seen) for offset in range(5)]
    early = [Delivery(offset, sent, 102 * MS) for offset in range(5)]

    phases = phase_breakdown(committed, early, timings)

    assert list(phases) == [*PHASES, EARLY_PHASE]
    assert phases["to_matcher"] == {"p50": 2.0, "p99": 2.0}
    assert phases["visible"] == {"p50": 7.0, "p99": 7.0}
    assert phases[EARLY_PHASE] == {"p50": 1.0, "p99": 1.0}  # applied at 101 ms, read at 102 ms


def test_a_delivery_it_cannot_place_is_left_out_of_the_phases_not_guessed() -> None:
    phases = phase_breakdown([Delivery(None, 0, MS), Delivery(99, 0, MS)], [], TimingLog())

    assert phases == {}


def test_percentiles_interpolate_between_samples_for_any_percent() -> None:
    samples = [n * MS for n in range(1, 1001)]  # 1 .. 1000 ms

    assert percentile_ms(samples, 50) == 500.5
    assert percentile_ms(samples, 99.9) == pytest.approx(999.0, abs=0.01)
    assert percentile_ms([7 * MS], 99) == 7.0


def test_progress_is_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress("replay", total=10, every_s=0.0)
    quiet = Progress("replay", total=10, every_s=3600.0)

    with caplog.at_level(logging.INFO, logger="progress"):
        progress.advance(3)
        progress.reached(7)
        quiet.advance(10)

    done = [record.__dict__["done"] for record in caplog.records]
    assert done == [3, 7]
    assert all(record.__dict__["total"] == 10 for record in caplog.records)
