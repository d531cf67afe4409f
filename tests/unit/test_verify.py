"""Verify's comparison: each replayed record against the next committed one of its stream, as it goes.

The committed streams are plain iterators here; on a broker they are readers that fetch as
they are asked (tests/integration/test_verify.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from matcher.verify import MAX_REPORTED, Committed, Comparison, Report, Stream

REPLIES: Stream = ("replies", 0)
EXECUTIONS: Stream = ("executions", 3)


class Tracked:
    """A committed stream that counts how many of its records were read."""

    def __init__(self, records: list[tuple[int, bytes]]) -> None:
        self.records = records
        self.read = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for record in self.records:
            self.read += 1
            yield record


def _outputs(commands: range, tag: bytes = b"r") -> list[tuple[int, bytes]]:
    return [(command, tag + str(command).encode()) for command in commands]


def _compare(committed: dict[Stream, Committed], replayed: list[tuple[Stream, int, bytes]]) -> Report:
    report = Report(partition=3)
    comparison = Comparison(committed, report)
    for stream, command, value in replayed:
        comparison.expect(stream, command, value)
    comparison.finish()
    return report


def test_identical_streams_have_no_mismatch() -> None:
    replies, executions = _outputs(range(5)), _outputs(range(0, 5, 2), b"e")
    replayed = [(REPLIES, c, v) for c, v in replies] + [(EXECUTIONS, c, v) for c, v in executions]

    report = _compare({REPLIES: iter(replies), EXECUTIONS: iter(executions)}, replayed)

    assert (report.mismatches, report.outputs_compared) == (0, 8)


def test_each_committed_record_is_read_only_when_its_twin_is_replayed() -> None:
    committed = Tracked(_outputs(range(1_000)))
    report = Report(partition=3)
    comparison = Comparison({REPLIES: iter(committed)}, report)

    for command, value in _outputs(range(10)):
        comparison.expect(REPLIES, command, value)

    assert committed.read == 10  # nothing is read ahead of the replay, so nothing piles up


def test_an_altered_record_is_a_mismatch_naming_its_stream_and_place() -> None:
    committed = _outputs(range(3))
    committed[1] = (1, b"forged")

    report = _compare({REPLIES: iter(committed)}, [(REPLIES, c, v) for c, v in _outputs(range(3))])

    assert report.mismatches == 1
    assert report.examples == ["replies[0] record 1: command 1 differs from replay of 1"]


def test_missing_records_are_counted_once_with_the_first_command_lacking_one() -> None:
    report = _compare({REPLIES: iter(_outputs(range(4)))}, [(REPLIES, c, v) for c, v in _outputs(range(10))])

    assert report.examples == ["replies[0]: 6 missing record(s), first of command 4"]


def test_records_beyond_the_replay_are_read_to_the_end_and_counted_as_extra() -> None:
    committed = Tracked(_outputs(range(10)))

    report = _compare({REPLIES: iter(committed)}, [(REPLIES, c, v) for c, v in _outputs(range(4))])

    assert committed.read == 10
    assert report.examples == ["replies[0]: 6 extra record(s), first of command 4"]


def test_a_committed_stream_the_replay_never_makes_is_all_extra() -> None:
    report = _compare({("orders_dlq", 3): iter(_outputs(range(2)))}, [])

    assert report.examples == ["orders_dlq[3]: 2 extra record(s), first of command 0"]


def test_a_replayed_stream_with_no_committed_reader_is_all_missing() -> None:
    report = _compare({}, [(("replies", 9), 7, b"r7")])

    assert report.examples == ["replies[9]: 1 missing record(s), first of command 7"]


def test_every_mismatch_is_counted_but_only_the_first_few_are_quoted() -> None:
    replayed = _outputs(range(100))
    committed = [(command, b"forged") for command, _ in replayed]

    report = _compare({REPLIES: iter(committed)}, [(REPLIES, c, v) for c, v in replayed])

    assert report.mismatches == 100
    assert len(report.examples) == MAX_REPORTED
