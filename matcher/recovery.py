"""Rebuilding a matcher's state: the last state snapshot, then the `orders` log up to the committed offset.

The outputs of every command below the committed offset are already committed, so the
replay only rebuilds the engine; it produces nothing.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any, NamedTuple

from confluent_kafka import TopicPartition

from matcher.processor import Processor, record_offset
from runtime.kafka import CommittedConsumer, read_to_end
from schemas import Codec, DecodeError

log = logging.getLogger("matcher.recovery")

# Guards against a broker that never answers; reading a partition to its end normally takes seconds.
READ_GUARD_S = 300.0
POLL_S = 0.2
REPLAY_BATCH = 1000


# The StateSnapshot's `state` is the engine's snapshot compressed with zlib: a snapshot of a
# million resting orders is ~70 MB raw and several times smaller compressed, well within the
# topic's record limit. Level 1 costs a fraction of a second at that size.
STATE_FORMAT_ZLIB = 2
ZLIB_LEVEL = 1


class StateSnapshot(NamedTuple):
    """The engine's state covering every command below ``orders_offset``."""

    orders_offset: int
    state: bytes


def state_snapshot_record(partition: int, orders_offset: int, ts_ns: int, state: bytes) -> dict[str, Any]:
    """The StateSnapshot record of an engine snapshot covering the commands below ``orders_offset``."""
    return {
        "partition": partition,
        "orders_offset": orders_offset,
        "ts_ns": ts_ns,
        "format_version": STATE_FORMAT_ZLIB,
        "state": zlib.compress(state, ZLIB_LEVEL),
    }


def engine_state(record: dict[str, Any]) -> bytes:
    """The engine's ``snapshot()`` bytes held in a StateSnapshot record."""
    if record["format_version"] != STATE_FORMAT_ZLIB:
        raise RecoveryError(f"state snapshot format {record['format_version']} is unknown here")
    return zlib.decompress(record["state"])


class RecoveryError(Exception):
    """Recovery cannot go on (a snapshot that does not fit the log); an operator must look."""


def latest_snapshot(bootstrap: str, topic: str, partition: int, codec: Codec) -> StateSnapshot | None:
    """The last committed state snapshot of ``partition`` (the topic is compacted, so this is short)."""
    latest: StateSnapshot | None = None
    for message in read_to_end(bootstrap, topic, partition, client_id=f"matcher-{partition}-snapshots"):
        try:
            _, record = codec.decode(message.value(), message.headers())
        except DecodeError as exc:
            log.warning("skipping unreadable state snapshot", extra={"error": str(exc)})
            continue
        if record["partition"] == partition:
            latest = StateSnapshot(record["orders_offset"], engine_state(record))
    return latest


def replay_orders(processor: Processor, consumer: CommittedConsumer, topic: str, start: int, end: int) -> int:
    """Apply `orders` records at offsets ``start`` up to (not including) ``end``; returns how many."""
    if start >= end:
        return 0
    consumer.assign([TopicPartition(topic, processor.partition, start)])
    applied = 0
    deadline = time.monotonic() + READ_GUARD_S
    while True:
        batch = consumer.consume(REPLAY_BATCH, POLL_S)
        if not batch:
            # At the end of what is committed: nothing below `end` is left to read.
            if consumer.at_end(topic, processor.partition):
                return applied
            if time.monotonic() > deadline:
                raise RecoveryError(
                    f"{topic}[{processor.partition}] offsets {start}..{end} could not be read"
                )
            continue
        for message in batch:
            offset = record_offset(message)
            if offset >= end:
                return applied
            processor.replay(message)
            applied += 1
            if offset == end - 1:
                return applied
