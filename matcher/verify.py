"""`exchange verify --partition P`: replay the `orders` log and compare every committed output, byte for byte.

This is the audit: a fresh engine (or the last state snapshot) replays the partition's
commands up to the matcher's committed offset through the same :class:`Processor` the
matcher runs, and each record it would produce must equal the record that was committed,
in the same order, once. A lost, repeated, reordered or altered output is a mismatch.
Prints one JSON line ``{"commands", "outputs_compared", "mismatches", "state_sha256", ...}``
and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from matcher.processor import Processor, record_offset
from matcher.recovery import latest_snapshot
from matcher.service import MatcherSettings, group_id
from matcher.wire import core_params
from runtime.kafka import CommittedConsumer, bootstrap_servers, read_to_end
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
    """Replay partition ``partition`` and compare what it produces with what was committed."""
    codec = codec or default_codec()
    report = Report(partition)
    report.committed_offset = _committed_offset(bootstrap, topics.orders, partition, group)
    symbols = map(core_params, registry.symbols_of_partition(partition))
    processor = Processor(partition, registry.partition_count, codec, symbols, topics.orders)
    if from_snapshot:
        snapshot = latest_snapshot(bootstrap, topics.state_snapshots, partition, codec)
        if snapshot is not None and snapshot.orders_offset <= report.committed_offset:
            processor.engine.restore(snapshot.state)
            report.from_offset = snapshot.orders_offset
    expected = _expected(bootstrap, topics.orders, processor, report)
    actual = _committed_outputs(bootstrap, topics, partition, codec, report)
    for stream in sorted(set(expected) | set(actual)):
        _compare(stream, expected.get(stream, []), actual.get(stream, []), report)
    report.state_sha256 = processor.engine.state_hash()
    return report


def _committed_offset(bootstrap: str, topic: str, partition: int, group: str) -> int:
    reader = CommittedConsumer(bootstrap, group_id=group, client_id=f"verify-{partition}")
    try:
        committed = reader.committed([TopicPartition(topic, partition)])[(topic, partition)]
    finally:
        reader.close()
    return committed or 0


def _expected(
    bootstrap: str, topic: str, processor: Processor, report: Report
) -> dict[Stream, list[tuple[int, bytes]]]:
    """What a replay of ``[from_offset, committed_offset)`` produces, per output stream, in order."""
    expected: dict[Stream, list[tuple[int, bytes]]] = defaultdict(list)
    start = report.from_offset or OFFSET_BEGINNING
    progress = Progress("verify: replay", report.committed_offset - report.from_offset)
    for message in read_to_end(bootstrap, topic, processor.partition, start=start, client_id="verify"):
        progress.advance()
        offset = record_offset(message)
        if offset < report.from_offset:
            continue
        if offset >= report.committed_offset:
            break
        step = processor.step(message)
        report.commands += 1
        for record in step.records:
            if record.role in COMPARED_ROLES:
                expected[(record.role, record.partition)].append((offset, record.value))
    return expected


def _committed_outputs(
    bootstrap: str,
    topics: TopicNames,
    partition: int,
    codec: Codec,
    report: Report,
) -> dict[Stream, list[tuple[int, bytes]]]:
    """The committed records of the partition's commands in range, per output stream, in order."""
    actual: dict[Stream, list[tuple[int, bytes]]] = defaultdict(list)
    sources: list[Stream] = [("executions", partition), ("book", partition), ("orders_dlq", partition)]
    sources += [("replies", p) for p in _partitions_of(bootstrap, topics.replies)]
    progress = Progress("verify: read committed outputs")
    for role, source_partition in sources:
        for message in read_to_end(bootstrap, getattr(topics, role), source_partition, client_id="verify"):
            progress.advance()
            value = message.value() or b""
            command = _command_of(codec, value, message.headers(), partition, report)
            if command is not None and report.from_offset <= command < report.committed_offset:
                actual[(role, source_partition)].append((command, value))
    return actual


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


def _compare(
    stream: Stream, expected: list[tuple[int, bytes]], actual: list[tuple[int, bytes]], report: Report
) -> None:
    role, partition = stream
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        report.outputs_compared += 1
        if want != got:
            report.mismatch(
                f"{role}[{partition}] record {index}: command {got[0]} differs from replay of {want[0]}"
            )
    if len(actual) > len(expected):
        extra = actual[len(expected)]
        report.mismatch(
            f"{role}[{partition}]: {len(actual) - len(expected)} extra record(s), first of command {extra[0]}"
        )
    elif len(expected) > len(actual):
        missing = expected[len(actual)]
        report.mismatch(
            f"{role}[{partition}]: {len(expected) - len(actual)} missing record(s), "
            f"first of command {missing[0]}"
        )


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
    report = verify_partition(
        bootstrap_servers(settings),
        TopicNames.with_prefix(settings.topic_prefix),
        load_registry(settings.symbols_file),
        args.partition,
        group=group_id(settings.topic_prefix, args.partition),
        from_snapshot=args.from_snapshot,
    )
    sys.stdout.write(report.as_json() + "\n")
    return 1 if report.mismatches else 0
