"""`exchange verify --partition P`: replay the `orders` log and compare every committed output, byte for byte.

This is the audit: the partition's genesis (or its last state snapshot) replays its
commands up to the matcher's committed offset through the same :class:`Processor` the
matcher runs, and each record it would produce must equal the record that was committed,
in the same order, once. A lost, repeated, reordered or altered output is a mismatch.
Prints one JSON line ``{"commands", "outputs_compared", "mismatches", "state_sha256", ...}``
and exits 1 on any mismatch.

It streams: each output stream (a topic partition) is read by its own reader, in step with
the replay, and each record is compared as soon as the replay makes its twin. Memory is the
engine's state and the readers' bounded fetch queues, however long the log is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message, TopicPartition

from matcher.genesis import read_genesis
from matcher.processor import Processor, record_offset
from matcher.recovery import RecoveryError, StateSnapshot, latest_snapshot, orders_in_range
from matcher.service import MatcherSettings, group_id
from matcher.snapshots import collector_paused
from runtime.errors import UserError
from runtime.kafka import CommittedConsumer, bootstrap_servers
from runtime.logs import configure_logging
from runtime.progress import Progress
from runtime.settings import load_settings
from runtime.symbols import SymbolRegistry, load_registry
from runtime.topics import TopicNames
from schemas import Codec, DecodeError, default_codec

# Outputs a replay reproduces exactly. Periodic book and state snapshots depend on when the
# matcher took them, so they are not compared (a book snapshot asked for by a command is).
COMPARED_ROLES = ("replies", "executions", "book", "orders_dlq")
MAX_REPORTED = 10

# Each reader keeps at most this much fetched ahead (librdkafka's defaults are 64 MiB and 100k
# records per reader); with one reader per stream, this bounds what verify holds besides the engine.
READER_CONFIG: dict[str, Any] = {
    "fetch.wait.max.ms": 50,
    "queued.max.messages.kbytes": 4096,
    "queued.min.messages": 10_000,
}
READ_BATCH = 500
POLL_S = 0.2
# Guards against a broker that stops answering while a reader waits; reset by every record.
READ_GUARD_S = 300.0


@dataclass
class Report:
    """The outcome of one verification."""

    partition: int
    commands: int = 0
    outputs_compared: int = 0
    mismatches: int = 0
    from_offset: int = 0
    committed_offset: int = 0
    state_sha256: str = ""
    examples: list[str] = field(default_factory=list)

    def mismatch(self, where: str) -> None:
        self.mismatches += 1
        if len(self.examples) < MAX_REPORTED:
            self.examples.append(where)

    def as_json(self) -> str:
        return json.dumps(
            {
                "partition": self.partition,
                "commands": self.commands,
                "outputs_compared": self.outputs_compared,
                "mismatches": self.mismatches,
                "state_sha256": self.state_sha256,
                "from_offset": self.from_offset,
                "committed_offset": self.committed_offset,
                "first_mismatches": self.examples,
            }
        )


Stream = tuple[str, int]  # (topic role, partition)
# The committed records of one stream that belong to the audited commands: (command offset, value).
Committed = Iterator[tuple[int, bytes]]


def verify_partition(
    bootstrap: str,
    topics: TopicNames,
    registry: SymbolRegistry,
    partition: int,
    *,
    codec: Codec | None = None,
    group: str,
    from_snapshot: bool = False,
) -> Report:
    """Replay partition ``partition`` and compare what it produces with what was committed.

    Raises :class:`RecoveryError` if the `orders` log lacks commands below the committed offset.
    """
    codec = codec or default_codec()
    report = Report(partition)
    report.committed_offset = _committed_offset(bootstrap, topics.orders, partition, group)
    processor = Processor(partition, registry.partition_count, codec, (), topics.orders)
    start = _starting_state(
        bootstrap, topics, partition, codec, committed=report.committed_offset, from_snapshot=from_snapshot
    )
    if start is not None:
        with collector_paused():
            processor.engine.restore(start.state)
        report.from_offset = start.orders_offset

    sources: list[Stream] = [("executions", partition), ("book", partition), ("orders_dlq", partition)]
    sources += [("replies", p) for p in _partitions_of(bootstrap, topics.replies)]
    comparison = Comparison(
        {
            (role, source): _committed_records(bootstrap, getattr(topics, role), source, codec, report)
            for role, source in sources
        },
        report,
    )
    progress = Progress("verify: replay", report.committed_offset - report.from_offset)
    where = f"{topics.orders}[{partition}]"
    with closing(read_partition(bootstrap, topics.orders, partition, start=report.from_offset)) as orders:
        for message in orders_in_range(orders, where, report.from_offset, report.committed_offset):
            offset = record_offset(message)
            report.commands += 1
            for record in processor.step(message).records:
                if record.role in COMPARED_ROLES:
                    comparison.expect((record.role, record.partition), offset, record.value)
            progress.advance()
    comparison.finish()
    report.state_sha256 = processor.engine.state_hash()
    return report


class Comparison:
    """Each record the replay makes, compared at once with the next committed record of its stream.

    ``committed`` holds each stream's committed records of the audited commands, in order, as
    iterators that fetch lazily: each is read only as far as the comparison has got. Nothing is
    kept but a position per stream and the counts of what is missing, so memory does not grow
    with the log. A stream the replay makes that is not in ``committed`` has no records.
    """

    def __init__(self, committed: dict[Stream, Committed], report: Report) -> None:
        self._report = report
        self._streams = {stream: _StreamPosition(records) for stream, records in committed.items()}

    def _stream(self, stream: Stream) -> _StreamPosition:
        position = self._streams.get(stream)
        if position is None:
            position = self._streams[stream] = _StreamPosition(iter(()))
        return position

    def expect(self, stream: Stream, command: int, value: bytes) -> None:
        """The replay of ``command`` made ``value`` as the next record of ``stream``."""
        position = self._stream(stream)
        got = next(position.records, None)
        if got is None:
            position.missing += 1
            if position.first_missing is None:
                position.first_missing = command
        else:
            self._report.outputs_compared += 1
            if got != (command, value):
                self._report.mismatch(
                    f"{stream[0]}[{stream[1]}] record {position.index}: command {got[0]} differs from "
                    f"replay of {command}"
                )
        position.index += 1

    def finish(self) -> None:
        """After the replay: what each stream lacks, and what it holds beyond the replay (read to its end)."""
        progress = Progress("verify: read the rest of the outputs")
        for stream in sorted(self._streams):
            position = self._streams[stream]
            role, partition = stream
            extra, first_extra = 0, None
            for command, _ in position.records:
                extra += 1
                first_extra = command if first_extra is None else first_extra
                progress.advance()
            if extra:
                self._report.mismatch(
                    f"{role}[{partition}]: {extra} extra record(s), first of command {first_extra}"
                )
            elif position.missing:
                self._report.mismatch(
                    f"{role}[{partition}]: {position.missing} missing record(s), "
                    f"first of command {position.first_missing}"
                )


@dataclass
class _StreamPosition:
    """How far the comparison has got in one stream."""

    records: Committed
    index: int = 0  # records of the stream compared (or found missing) so far
    missing: int = 0
    first_missing: int | None = None


def _starting_state(
    bootstrap: str, topics: TopicNames, partition: int, codec: Codec, *, committed: int, from_snapshot: bool
) -> StateSnapshot | None:
    """The state the replay starts from: the partition's genesis, or its last snapshot if asked.

    The log alone defines the state (DESIGN.md): the registry file only seeded the genesis, and
    a later edit of it must not change what the replay of the past makes. None only for a
    partition no matcher has started (nothing committed, so nothing to compare).
    """
    if from_snapshot:
        snapshot = latest_snapshot(bootstrap, topics.state_snapshots, partition, codec)
        if snapshot is not None and snapshot.orders_offset <= committed:
            return snapshot
    genesis = read_genesis(bootstrap, topics.state_snapshots, partition, codec)
    if genesis is None and committed > 0:
        raise RecoveryError(
            f"{topics.state_snapshots}[{partition}] holds no genesis, but commands up to offset "
            f"{committed - 1} were committed: the topic was deleted or made anew"
        )
    return genesis


def _committed_offset(bootstrap: str, topic: str, partition: int, group: str) -> int:
    reader = CommittedConsumer(bootstrap, group_id=group, client_id=f"verify-{partition}")
    try:
        committed = reader.committed([TopicPartition(topic, partition)])[(topic, partition)]
    finally:
        reader.close()
    return committed or 0


def read_partition(
    bootstrap: str, topic: str, partition: int, *, start: int = 0
) -> Generator[Message, None, None]:
    """The partition's committed records from ``start`` to its end, fetched as they are asked for.

    Unlike :func:`runtime.kafka.read_to_end`, the guard against a silent broker runs only while
    a record is waited for: a reader left alone while others are read does not time out.
    """
    reader = CommittedConsumer(
        bootstrap, group_id=f"verify.{uuid.uuid4().hex}", client_id="verify", config=READER_CONFIG
    )
    try:
        reader.assign([TopicPartition(topic, partition, start)])
        while True:
            deadline = time.monotonic() + READ_GUARD_S
            while not (batch := reader.consume(READ_BATCH, POLL_S)):
                if reader.at_end(topic, partition):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{partition}] sent nothing for {READ_GUARD_S:.0f} s")
            yield from batch
    finally:
        reader.close()


def _committed_records(
    bootstrap: str, topic: str, source_partition: int, codec: Codec, report: Report
) -> Committed:
    """The committed records of ``topic[source_partition]`` that the audited commands produced, in order."""
    for message in read_partition(bootstrap, topic, source_partition):
        value = message.value() or b""
        command = _command_of(codec, value, message.headers(), report.partition, report)
        if command is not None and report.from_offset <= command < report.committed_offset:
            yield command, value


def _command_of(codec: Codec, value: bytes, headers: Any, partition: int, report: Report) -> int | None:
    """The `orders` offset of the command an output record belongs to, if it is this partition's."""
    try:
        name, record = codec.decode(value, headers or [])
    except DecodeError as exc:
        report.mismatch(f"undecodable output: {exc}")
        return None
    if name == "DeadLetter":
        return int(record["source_offset"])
    if name == "Reply" and record["partition"] != partition:
        return None
    return int(record["command_offset"])


def _partitions_of(bootstrap: str, topic: str) -> Iterable[int]:
    reader = CommittedConsumer(bootstrap, group_id="verify-metadata", client_id="verify")
    try:
        return sorted(reader.partitions_of(topic))
    finally:
        reader.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partition", type=int, required=True, help="the `orders` partition to audit")
    parser.add_argument(
        "--from-snapshot",
        action="store_true",
        help="start from the last state snapshot instead of the log's start",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(MatcherSettings)
    configure_logging(settings.log_level, settings.log_format)
    try:
        report = verify_partition(
            bootstrap_servers(settings),
            TopicNames.with_prefix(settings.topic_prefix),
            load_registry(settings.symbols_file),
            args.partition,
            group=group_id(settings.topic_prefix, args.partition),
            from_snapshot=args.from_snapshot,
        )
    except RecoveryError as exc:
        raise UserError(f"cannot replay: {exc}") from None
    sys.stdout.write(report.as_json() + "\n")
    return 1 if report.mismatches else 0
