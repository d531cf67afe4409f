"""Rebuilding a matcher's state: the last state snapshot, then the `orders` log up to the committed offset.

The outputs of every command below the committed offset are already committed, so the
replay only rebuilds the engine; it produces nothing.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from confluent_kafka import Message, TopicPartition

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


def state_snapshot_record(
    partition: int, orders_offset: int, ts_ns: int, state: Iterable[bytes]
) -> dict[str, Any]:
    """The StateSnapshot record of an engine snapshot (its pieces, ``snapshot_pieces()``, or
    ``[snapshot()]``) covering the commands below ``orders_offset``."""
    return {
        "partition": partition,
        "orders_offset": orders_offset,
        "ts_ns": ts_ns,
        "format_version": STATE_FORMAT_ZLIB,
        "state": compressed_state(state),
    }


def compressed_state(pieces: Iterable[bytes]) -> bytes:
    """The engine snapshot made of ``pieces``, compressed as STATE_FORMAT_ZLIB holds it.

    One compressor fed a piece at a time writes what ``zlib.compress`` of them joined would, at the
    same level, without the whole snapshot ever in memory (nor its compressed copy beside it).
    """
    compressor = zlib.compressobj(ZLIB_LEVEL)
    compressed = [compressor.compress(piece) for piece in pieces]
    compressed.append(compressor.flush())
    return b"".join(compressed)


def engine_state(record: dict[str, Any]) -> bytes:
    """The engine's ``snapshot()`` bytes held in a StateSnapshot record."""
    if record["format_version"] != STATE_FORMAT_ZLIB:
        raise RecoveryError(f"state snapshot format {record['format_version']} is unknown here")
    return zlib.decompress(record["state"])


class RecoveryError(Exception):
    """Recovery cannot go on (a snapshot that does not fit the log); an operator must look."""


def state_snapshot_key(partition: int) -> bytes:
    """The key the matcher writes ``partition``'s state snapshots under (compaction keeps the last)."""
    return str(partition).encode()


def latest_snapshot(bootstrap: str, topic: str, partition: int, codec: Codec) -> StateSnapshot | None:
    """The last committed state snapshot of ``partition``, the only one decoded.

    The topic is compacted, but its tail is not yet, and each snapshot there is a whole engine
    state (megabytes): the records are told apart by key and offset alone, and only the last of
    the partition's is decoded and decompressed. An earlier one is fetched again and decoded only
    when the last cannot be read (a schema this version does not know, say).
    """
    key = state_snapshot_key(partition)
    offsets: list[int] = []
    last: Message | None = None
    for message in read_to_end(bootstrap, topic, partition, client_id=f"matcher-{partition}-snapshots"):
        if message.key() == key:
            offsets.append(record_offset(message))
            last = message  # kept undecoded; the one before is let go
    while last is not None:
        snapshot = _snapshot_of(last, partition, codec)
        if snapshot is not None:
            return snapshot
        offsets.pop()
        last = _record_at(bootstrap, topic, partition, offsets[-1]) if offsets else None
    return None


def _snapshot_of(message: Message, partition: int, codec: Codec) -> StateSnapshot | None:
    """The snapshot in ``message``, or None (with a warning) if it is not a readable one of ``partition``."""
    where = {"offset": record_offset(message), "partition": partition}
    try:
        _, record = codec.decode(message.value(), message.headers())
    except DecodeError as exc:
        log.warning("skipping unreadable state snapshot", extra={**where, "error": str(exc)})
        return None
    if record["partition"] != partition:
        log.warning(
            "skipping a state snapshot of another partition", extra={**where, "of": record["partition"]}
        )
        return None
    return StateSnapshot(record["orders_offset"], engine_state(record))


def _record_at(bootstrap: str, topic: str, partition: int, offset: int) -> Message | None:
    """The record at ``offset``, if it is still there (compaction may have removed it since)."""
    for message in read_to_end(bootstrap, topic, partition, start=offset, client_id="matcher-snapshots"):
        return message if record_offset(message) == offset else None  # leaving closes the reader
    return None


def replay_orders(processor: Processor, consumer: CommittedConsumer, topic: str, start: int, end: int) -> int:
    """Apply `orders` records at offsets ``start`` up to (not including) ``end``; returns how many.

    Raises :class:`RecoveryError` naming the offsets when the log does not hold every one of
    them (see :func:`orders_in_range`).
    """
    if start >= end:
        return 0
    applied = 0
    partition = processor.partition
    records = _records(consumer, topic, partition, start)
    for message in orders_in_range(records, f"{topic}[{partition}]", start, end):
        processor.replay(message)
        applied += 1
    return applied


def orders_in_range(messages: Iterable[Message], where: str, start: int, end: int) -> Iterator[Message]:
    """The records of ``messages`` (one partition's records in offset order, read from ``start``)
    at offsets ``start`` to ``end - 1``, each of which must be there.

    The `orders` log is kept forever and written without transactions (so no offset holds a
    commit marker): the first record read is exactly at ``start``, and the last is at ``end - 1``.
    Anything else means records that outputs were committed for are gone (deleted, the log
    truncated, or the topic made anew), and the state cannot be rebuilt: :class:`RecoveryError`,
    naming ``where`` and the offsets. Stops reading at ``end - 1``.
    """
    if start >= end:
        return
    last: int | None = None
    for message in messages:
        offset = record_offset(message)
        if last is None and offset != start:
            raise RecoveryError(_first_record_error(where, start, end, offset))
        if offset >= end:
            break
        yield message
        last = offset
        if offset == end - 1:
            return
    if last is None:
        raise RecoveryError(
            f"{where} has no record at or after offset {start}, but commands up to offset {end - 1} "
            f"were committed: the log ends before them (truncated, or the topic was made anew)"
        )
    raise RecoveryError(
        f"{where} ends at offset {last + 1}, but commands up to offset {end - 1} were committed: "
        f"offsets {last + 1}..{end - 1} are missing (the log was truncated)"
    )


def _first_record_error(where: str, start: int, end: int, first: int) -> str:
    if first > start:
        return (
            f"{where} starts at offset {first}, but the replay must start at {start}: offsets "
            f"{start}..{first - 1} were deleted (retention or delete-records), so the state at the "
            f"committed offset {end} cannot be rebuilt"
        )
    return (
        f"{where} has no offset {start} (reading there restarted at offset {first}): the log ends "
        f"before the snapshot's or committed offset {end} (truncated, or the topic was made anew)"
    )


def _records(consumer: CommittedConsumer, topic: str, partition: int, start: int) -> Iterator[Message]:
    """The partition's committed records from ``start`` to its end, read in batches by ``consumer``."""
    consumer.assign([TopicPartition(topic, partition, start)])
    deadline = time.monotonic() + READ_GUARD_S
    while True:
        batch = consumer.consume(REPLAY_BATCH, POLL_S)
        if batch:
            deadline = time.monotonic() + READ_GUARD_S
            yield from batch
        elif consumer.at_end(topic, partition):
            return  # at the end of what is committed
        elif time.monotonic() > deadline:
            raise RecoveryError(f"{topic}[{partition}] from offset {start} could not be read")
