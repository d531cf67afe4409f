"""The relay's Kafka edge: one thread reads every partition of four topics and hands the records over.

It reads by assignment (no consumer group; nothing is committed), ``read_committed``:

1. `symbols` and `book-snapshots` from the beginning to their end: the live registry is current
   and the latest snapshot of every symbol is known (and handed over, to boot the books);
2. then `book` from a point before the oldest of those snapshots was written (minus a margin), or
   further back for a day of trades (the tape), or from the beginning of a partition that has a
   symbol without any snapshot; `executions` from its end (the private channel is live only);
   `symbols` and `book-snapshots` go on where they were.

Records are decoded here and handed to the event loop in batches (a bounded queue: a slow loop
slows this reader, never the other way round). A book that sees a gap asks, through
:meth:`Feed.step_back`, for its partition to be read again from further back; each step doubles
the distance, down to the partition's first offset. Every record carries its partition's
generation (the number of step backs so far), so the loop can tell records read before a step
from those read after it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Message, TopicPartition

from runtime.kafka import CommittedConsumer
from runtime.live_symbols import LiveRegistry
from runtime.topics import TopicNames
from schemas import Codec, DecodeError

log = logging.getLogger("relay.feed")

BATCH = 500
POLL_S = 0.1
# The first step back goes at least this many records further.
MIN_STEP_BACK = 1_000
ROLES = ("book", "book_snapshots", "executions", "symbols")


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One decoded record: its topic role, partition, offset, the partition's generation, the record."""

    role: str
    partition: int
    offset: int
    generation: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Every `book` partition was read to where it ended when the relay booted."""


@dataclass(frozen=True, slots=True)
class StepBackExhausted:
    """A `book` partition is read from its first offset and a gap remains: only a snapshot can close it."""

    partition: int


FeedItem = FeedRecord | CaughtUp | StepBackExhausted
HandOver = Callable[[list[FeedItem]], bool]  # False: the relay is stopping


@dataclass(frozen=True, slots=True)
class SnapshotSeen:
    """The latest snapshot of a symbol found at boot: its seq, partition and record time."""

    seq: int
    partition: int
    timestamp_ms: int


def book_start_ms(
    partition: int,
    symbols: Mapping[str, int],
    snapshots: Mapping[str, SnapshotSeen],
    *,
    now_ms: int,
    tape_ms: int,
    margin_ms: int,
) -> int | None:
    """Where to start reading a `book` partition, as a record time; None: from its beginning.

    ``symbols`` maps each listed symbol to its partition. Every symbol of the partition must have a
    snapshot: deltas of one that has none may lie anywhere before, and none after may show the gap.
    """
    mine = [name for name, p in symbols.items() if p == partition]
    if any(name not in snapshots for name in mine):
        return None
    written = [snapshots[name].timestamp_ms for name in mine]
    return min([now_ms - tape_ms, *written]) - margin_ms


class Feed:
    """The reader thread's work; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        bootstrap: str,
        topics: TopicNames,
        codec: Codec,
        registry: LiveRegistry,
        *,
        tape_s: float,
        margin_s: float,
        on_record: Callable[[str], None] = lambda _role: None,
        on_step_back: Callable[[], None] = lambda: None,
    ) -> None:
        self.topics = topics
        self.codec = codec
        self.registry = registry
        self.tape_ms = int(tape_s * 1000)
        self.margin_ms = int(margin_s * 1000)
        self.on_record = on_record
        self.on_step_back = on_step_back
        self._roles = {getattr(topics, role): role for role in ROLES}
        self._requests: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._starts: dict[int, int] = {}
        self._distance: dict[int, int] = {}
        self._generation: dict[int, int] = {}
        self._consumer = CommittedConsumer(
            bootstrap,
            group_id=f"relay-{uuid.uuid4().hex}",  # never committed: the relay reads by assignment
            client_id="relay",
            # As the matcher's: a read_committed fetch may sit out its whole wait after a commit
            # made records visible, which every subscriber would feel as latency.
            config={"fetch.wait.max.ms": 5},
        )

    def step_back(self, partition: int) -> None:
        """Ask for `book` ``partition`` to be read again from further back (any thread)."""
        self._requests.put(partition)

    def run(self, stop: threading.Event, hand_over: HandOver) -> None:
        try:
            self._read(stop, hand_over)
        finally:
            self._consumer.close()

    def _read(self, stop: threading.Event, hand_over: HandOver) -> None:
        topics, consumer = self.topics, self._consumer
        partitions = {role: consumer.partitions_of(getattr(topics, role)) for role in ROLES}
        # 1. The registry and the latest snapshots.
        consumer.assign(
            [TopicPartition(topics.symbols, p, OFFSET_BEGINNING) for p in partitions["symbols"]]
            + [
                TopicPartition(topics.book_snapshots, p, OFFSET_BEGINNING)
                for p in partitions["book_snapshots"]
            ]
        )
        snapshots: dict[str, SnapshotSeen] = {}
        ends = [(topics.symbols, p) for p in partitions["symbols"]]
        ends += [(topics.book_snapshots, p) for p in partitions["book_snapshots"]]
        while not all(consumer.at_end(topic, p) for topic, p in ends):
            if stop.is_set():
                return
            items = self._decoded(consumer.available(BATCH, POLL_S), snapshots)
            if items and not hand_over(items):
                return
        # 2. Everything, `book` from the boot start.
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position()}
        assignment = [
            TopicPartition(topic, p, offset if offset >= 0 else OFFSET_BEGINNING)
            for (topic, p), offset in positions.items()
        ]
        assignment += [TopicPartition(topics.executions, p, OFFSET_END) for p in partitions["executions"]]
        targets = self._plan_book(partitions["book"], snapshots)
        assignment += [TopicPartition(topics.book, p, self._starts[p]) for p in partitions["book"]]
        consumer.assign(assignment)
        caught_up = False
        while not stop.is_set():
            self._serve_step_backs(hand_over)
            items = self._decoded(consumer.available(BATCH, POLL_S), None)
            if not caught_up and self._reached(targets):
                caught_up = True
                items.append(CaughtUp())
            if items and not hand_over(items):
                return

    def _plan_book(self, partitions: list[int], snapshots: Mapping[str, SnapshotSeen]) -> dict[int, int]:
        """Set each `book` partition's start; returns the end each must be read to, to be caught up."""
        listed = {symbol.name: symbol.partition for symbol in self.registry.symbols()}
        now_ms = int(time.time() * 1000)
        targets = {}
        for p in partitions:
            low, high = self._consumer.watermarks(self.topics.book, p)
            start_ms = book_start_ms(
                p, listed, snapshots, now_ms=now_ms, tape_ms=self.tape_ms, margin_ms=self.margin_ms
            )
            start = low
            if start_ms is not None:
                found = self._consumer.offset_for_time(self.topics.book, p, max(start_ms, 0))
                start = high if found is None else max(found, low)
            self._starts[p], targets[p] = start, high
            self._distance[p] = max(MIN_STEP_BACK, high - start)
            self._generation[p] = 0
            log.info("book partition start", extra={"partition": p, "start": start, "end": high})
        return targets

    def _reached(self, targets: Mapping[int, int]) -> bool:
        book = self.topics.book
        positions = {tp.partition: tp.offset for tp in self._consumer.position() if tp.topic == book}
        return all(
            self._consumer.at_end(book, p) or positions.get(p, -1) >= target for p, target in targets.items()
        )

    def _serve_step_backs(self, hand_over: HandOver) -> None:
        while True:
            try:
                p = self._requests.get_nowait()
            except queue.Empty:
                return
            low, _ = self._consumer.watermarks(self.topics.book, p)
            start = self._starts[p]
            if start <= low:
                log.warning("gap in book partition read from its first offset", extra={"partition": p})
                hand_over([StepBackExhausted(p)])
                continue
            start = self._starts[p] = max(low, start - self._distance[p])
            self._distance[p] *= 2
            self._generation[p] += 1
            self._consumer.seek(self.topics.book, p, start)
            self.on_step_back()
            log.info("book partition stepped back", extra={"partition": p, "start": start})

    def _decoded(self, messages: list[Message], snapshots: dict[str, SnapshotSeen] | None) -> list[FeedItem]:
        items: list[FeedItem] = []
        for message in messages:
            role = self._roles.get(message.topic() or "")
            if role is None:
                continue
            try:
                _, record = self.codec.decode(message.value(), message.headers())
            except DecodeError as exc:
                log.error("undecodable record", extra={"topic": message.topic(), "reason": str(exc)})
                continue
            self.on_record(role)
            partition = message.partition() or 0
            if role == "symbols":
                self.registry.apply(record)
                continue
            if role == "book_snapshots" and snapshots is not None and record.get("part", 0) == 0:
                seen = snapshots.get(record["symbol"])
                if seen is None or record["seq"] >= seen.seq:
                    snapshots[record["symbol"]] = SnapshotSeen(
                        record["seq"], partition, message.timestamp()[1]
                    )
            generation = self._generation.get(partition, 0) if role == "book" else 0
            items.append(FeedRecord(role, partition, message.offset() or 0, generation, record))
        return items
