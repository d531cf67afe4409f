"""What the matcher's exactly-once design relies on, proven against a real broker.

Outputs and consumed offsets are committed in one transaction; readers use
``read_committed``; a restarted matcher fences its zombie through a stable
``transactional.id`` (DESIGN.md, "Matcher").
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import TopicPartition

from runtime.kafka import (
    CommittedConsumer,
    ErrorKind,
    FatalKafkaError,
    IdempotentProducer,
    TransactionalProducer,
    classify,
)
from tests.conftest import PartitionReader, TopicFactory


def _transactional(bootstrap: str, transactional_id: str | None = None) -> TransactionalProducer:
    producer = TransactionalProducer(
        bootstrap, transactional_id=transactional_id or f"test-{uuid.uuid4().hex}"
    )
    producer.init()
    return producer


def _open_transaction_in_log(producer: TransactionalProducer, topic: str, values: list[bytes]) -> None:
    """Begin a transaction and send its records to the broker, leaving it open (uncommitted)."""
    producer.begin()
    for value in values:
        producer.produce(topic, value, partition=0)
    producer.flush()


def _write_inputs(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = IdempotentProducer(bootstrap, client_id="test-input")
    for value in values:
        producer.produce(topic, value, partition=0)
    producer.close()


def _consume(consumer: CommittedConsumer, count: int) -> list[bytes | None]:
    values: list[bytes | None] = []
    for _ in range(60):  # polls of at most a second: a guard against hanging, not a time limit
        if len(values) == count:
            return values
        message = consumer.poll(1.0)
        if message is not None:
            values.append(message.value())
    pytest.fail(f"read {len(values)} of {count} records")


def test_transactional_records_are_invisible_to_read_committed_until_commit(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    topic = topic_factory()
    producer = _transactional(kafka_bootstrap)
    _open_transaction_in_log(producer, topic, [b"a", b"b", b"c"])

    in_log_before_commit = read_partition(topic, uncommitted=True)
    committed_before_commit = read_partition(topic)
    producer.commit()
    committed_after_commit = read_partition(topic)

    assert in_log_before_commit == [b"a", b"b", b"c"]
    assert committed_before_commit == []
    assert committed_after_commit == [b"a", b"b", b"c"]


def test_aborted_transaction_is_never_visible_to_read_committed(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    topic = topic_factory()
    producer = _transactional(kafka_bootstrap)
    _open_transaction_in_log(producer, topic, [b"aborted"])
    producer.abort()

    with producer.transaction():
        producer.produce(topic, b"committed", partition=0)

    assert read_partition(topic, uncommitted=True) == [b"aborted", b"committed"]
    assert read_partition(topic) == [b"committed"]


def test_failing_transaction_block_aborts_its_records(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    topic = topic_factory()
    producer = _transactional(kafka_bootstrap)

    with pytest.raises(RuntimeError), producer.transaction():
        producer.produce(topic, b"half-done", partition=0)
        raise RuntimeError("the step failed")
    with producer.transaction():
        producer.produce(topic, b"next step", partition=0)

    assert read_partition(topic) == [b"next step"]


def test_second_producer_with_same_transactional_id_fences_the_first(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    topic = topic_factory()
    transactional_id = f"matcher-{uuid.uuid4().hex}"
    zombie = _transactional(kafka_bootstrap, transactional_id)
    with zombie.transaction():
        zombie.produce(topic, b"before takeover", partition=0)

    successor = _transactional(kafka_bootstrap, transactional_id)
    zombie.begin()
    with pytest.raises(FatalKafkaError) as raised:
        zombie.produce(topic, b"zombie write", partition=0)
        zombie.commit()
    with successor.transaction():
        successor.produce(topic, b"after takeover", partition=0)

    assert raised.value.fenced
    assert classify(raised.value.error) is ErrorKind.FATAL
    assert read_partition(topic) == [b"before takeover", b"after takeover"]


def test_send_offsets_to_transaction_commits_consumed_offsets_with_outputs(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    inputs, outputs = topic_factory(), topic_factory()
    _write_inputs(kafka_bootstrap, inputs, [b"1", b"2", b"3", b"4", b"5"])
    consumer = CommittedConsumer(kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex}", client_id="test")
    consumer.assign([TopicPartition(inputs, 0)])
    producer = _transactional(kafka_bootstrap)

    with producer.transaction(consumed=consumer):
        for value in _consume(consumer, 3):
            producer.produce(outputs, b"out-" + (value or b""), partition=0)

    assert consumer.committed([TopicPartition(inputs, 0)]) == {(inputs, 0): 3}
    assert read_partition(outputs) == [b"out-1", b"out-2", b"out-3"]
    consumer.close()


def test_offsets_commit_from_another_thread_while_the_consumer_is_polled_without_pause(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    """The matcher commits in a background thread while its main thread polls on (1 ms polls).

    The client lets one thread use a consumer at a time: asking it for the group metadata from
    the commit thread then waited as long as the polling went on (once, for minutes).
    """
    inputs, outputs = topic_factory(), topic_factory()
    consumer = CommittedConsumer(kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex}", client_id="test")
    consumer.assign([TopicPartition(inputs, 0)])
    producer = _transactional(kafka_bootstrap)
    polling = threading.Event()
    polling.set()

    def poll_without_pause() -> None:
        while polling.is_set():
            consumer.poll(0.001)

    def commit_offsets(count: int) -> None:
        for offset in range(1, count + 1):
            producer.begin()
            producer.produce(outputs, b"x", partition=0)
            producer.commit(consumer, [TopicPartition(inputs, 0, offset)])

    poller = threading.Thread(target=poll_without_pause, daemon=True)
    poller.start()
    with ThreadPoolExecutor(max_workers=1) as committer:
        commits = committer.submit(commit_offsets, 5)
        try:
            commits.result(timeout=60)  # a guard against a hang, not a time limit
        finally:
            polling.clear()
            poller.join()

    assert consumer.committed([TopicPartition(inputs, 0)]) == {(inputs, 0): 5}
    consumer.close()


def test_aborted_transaction_commits_neither_offsets_nor_outputs(
    kafka_bootstrap: str, topic_factory: TopicFactory, read_partition: PartitionReader
) -> None:
    inputs, outputs = topic_factory(), topic_factory()
    _write_inputs(kafka_bootstrap, inputs, [b"1", b"2", b"3"])
    consumer = CommittedConsumer(kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex}", client_id="test")
    consumer.assign([TopicPartition(inputs, 0)])
    producer = _transactional(kafka_bootstrap)

    producer.begin()
    for value in _consume(consumer, 2):
        producer.produce(outputs, b"out-" + (value or b""), partition=0)
    producer.send_offsets(consumer)
    producer.abort()

    assert consumer.committed([TopicPartition(inputs, 0)]) == {(inputs, 0): None}
    assert read_partition(outputs) == []
    consumer.close()


def test_rewind_after_abort_reads_again_from_the_committed_offset(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    inputs = topic_factory()
    _write_inputs(kafka_bootstrap, inputs, [b"1", b"2", b"3", b"4"])
    consumer = CommittedConsumer(kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex}", client_id="test")
    consumer.assign([TopicPartition(inputs, 0)])
    producer = _transactional(kafka_bootstrap)
    with producer.transaction(consumed=consumer):
        _consume(consumer, 1)
    producer.begin()
    _consume(consumer, 2)
    producer.abort()

    consumer.rewind_to_committed()

    assert _consume(consumer, 3) == [b"2", b"3", b"4"]
    consumer.close()
