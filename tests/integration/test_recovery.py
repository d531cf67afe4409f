"""Recovery on a real broker: the last state snapshot decoded alone; the `orders` range whole, or refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from matcher.core import MatchingEngine, SymbolParams
from matcher.processor import Processor
from matcher.recovery import RecoveryError, latest_snapshot, replay_orders, state_snapshot_key
from matcher.snapshots import SNAPSHOT_SCHEMA, encoded_state_snapshot
from runtime.kafka import CommittedConsumer, IdempotentProducer
from runtime.topics import STATE_SNAPSHOT_MAX_BYTES
from schemas import Codec, default_codec
from schemas.codec import Headers

TopicFactory = Callable[..., str]
PARTITION = 0
SYMBOL = "SYM000"
ADMIN_TIMEOUT_S = 30.0


class CountingCodec(Codec):
    """The real codec, counting what it decodes."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode(self, value: bytes | None, headers: Headers) -> tuple[str, dict[str, object]]:
        self.decoded += 1
        return super().decode(value, headers)


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, list[tuple[str, bytes]]]]) -> None:
    producer = IdempotentProducer(
        bootstrap, client_id="test-recovery", config={"message.max.bytes": STATE_SNAPSHOT_MAX_BYTES}
    )
    for value, headers in records:
        producer.produce(
            topic, value, key=state_snapshot_key(PARTITION), partition=PARTITION, headers=headers
        )
    producer.close()


def _snapshot(orders_offset: int) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A StateSnapshot record of an engine with one symbol, covering the commands below ``orders_offset``."""
    engine = MatchingEngine(PARTITION, [SymbolParams(SYMBOL)])
    value = encoded_state_snapshot(default_codec(), engine, PARTITION, orders_offset, orders_offset)
    return value, default_codec().trusted_writer(SNAPSHOT_SCHEMA)[1]


def test_only_the_last_of_several_snapshots_is_decoded(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(config={"max.message.bytes": str(STATE_SNAPSHOT_MAX_BYTES)})
    _produce(kafka_bootstrap, topic, [_snapshot(offset) for offset in (100, 200, 300, 400, 500)])
    codec = CountingCodec()

    snapshot = latest_snapshot(kafka_bootstrap, topic, PARTITION, codec)

    assert snapshot is not None and snapshot.orders_offset == 500
    assert codec.decoded == 1


def test_an_unreadable_last_snapshot_gives_way_to_the_one_before(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(config={"max.message.bytes": str(STATE_SNAPSHOT_MAX_BYTES)})
    from_the_future = (b"\x00", [("schema", b"StateSnapshot"), ("schema-version", b"99")])
    _produce(kafka_bootstrap, topic, [_snapshot(100), _snapshot(200), from_the_future])
    codec = CountingCodec()

    snapshot = latest_snapshot(kafka_bootstrap, topic, PARTITION, codec)

    assert snapshot is not None and snapshot.orders_offset == 200
    assert codec.decoded == 2


def test_a_partition_without_snapshots_has_none(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    assert latest_snapshot(kafka_bootstrap, topic_factory(), PARTITION, CountingCodec()) is None


# --- replaying `orders` ----------------------------------------------------------------------------


def _orders(kafka_bootstrap: str, topic_factory: TopicFactory, count: int) -> str:
    """An `orders` topic of ``count`` records; what they hold does not matter to which offsets are read."""
    topic = topic_factory()
    _produce(kafka_bootstrap, topic, [(b"not a command", []) for _ in range(count)])
    return topic


def _replay(bootstrap: str, topic: str, start: int, end: int) -> int:
    processor = Processor(PARTITION, 1, default_codec(), [SymbolParams(SYMBOL)], topic)
    consumer = CommittedConsumer(
        bootstrap, group_id=f"test-replay-{uuid.uuid4().hex}", client_id="test-replay"
    )
    try:
        return replay_orders(processor, consumer, topic, start, end)
    finally:
        consumer.close()


def test_the_replay_applies_every_record_from_the_snapshot_to_the_committed_offset(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = _orders(kafka_bootstrap, topic_factory, 20)

    assert _replay(kafka_bootstrap, topic, 5, 20) == 15
    assert _replay(kafka_bootstrap, topic, 0, 7) == 7


def test_records_deleted_below_the_log_start_stop_the_replay_naming_them(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_factory: TopicFactory
) -> None:
    topic = _orders(kafka_bootstrap, topic_factory, 20)
    [deleted] = kafka_admin.delete_records([TopicPartition(topic, PARTITION, 10)]).values()
    deleted.result(ADMIN_TIMEOUT_S)

    with pytest.raises(RecoveryError, match=r"starts at offset 10, .* offsets 5\.\.9 were deleted"):
        _replay(kafka_bootstrap, topic, 5, 20)


def test_a_log_shorter_than_the_committed_offset_stops_the_replay_naming_the_missing_offsets(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = _orders(kafka_bootstrap, topic_factory, 20)

    with pytest.raises(RecoveryError, match=r"ends at offset 20, .* offsets 20\.\.24 are missing"):
        _replay(kafka_bootstrap, topic, 5, 25)


def test_a_snapshot_beyond_the_log_end_stops_the_replay(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = _orders(kafka_bootstrap, topic_factory, 20)

    with pytest.raises(RecoveryError, match=r"has no offset 30 \(reading there restarted at offset 0\)"):
        _replay(kafka_bootstrap, topic, 30, 40)


def test_an_empty_log_with_commands_committed_stops_the_replay(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    with pytest.raises(RecoveryError, match=r"no record at or after offset 0, but commands up to offset 4"):
        _replay(kafka_bootstrap, topic_factory(), 0, 5)
