"""The checkpoint's transaction cycle and what each kind of Kafka error leaves of it, without a broker.

The checkpoint runs on the real producer and consumer wrappers (``runtime.kafka``), whose
librdkafka clients are replaced by a fake that logs every call and raises the errors a test
hands it. What Kafka itself does with them (fencing, read_committed) is for the integration tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from matcher.checkpoint import Checkpoint, CommitHung, InjectedAbort, OpenBatch
from matcher.processor import Record
from runtime import kafka
from runtime.kafka import CommittedConsumer, FatalKafkaError, TransactionAborted, TransactionalProducer
from runtime.topics import TopicNames

PARTITION = 3
TOPICS = TopicNames.with_prefix("t.")
GROUP = "group-of-matcher-3"


class FakeClient:
    """librdkafka's producer and consumer as far as the checkpoint uses them; ``fail`` queues errors."""

    def __init__(self, _config: dict[str, Any]) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, list[KafkaError]] = {}
        self.hang: dict[str, threading.Event] = {}  # a call that returns only once its event is set

    def _call(self, name: str, *details: Any) -> None:
        self.calls.append((name, *details))
        if name in self.hang:
            self.hang[name].wait()
        errors = self.fail.get(name)
        if errors:
            raise KafkaException(errors.pop(0))

    def init_transactions(self, _timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, **_: Any) -> None:
        self._call("produce", topic, value)

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], group: str, _timeout: float) -> None:
        self._call("send_offsets", [(tp.topic, tp.partition, tp.offset) for tp in offsets], group)

    def commit_transaction(self, _timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, _timeout: float) -> None:
        self._call("abort")

    def flush(self, _timeout: float) -> int:
        self._call("flush")
        return 0

    def consumer_group_metadata(self) -> str:
        return GROUP


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClient]:
    """The fake every wrapper made in the test gets as its librdkafka client."""
    fake = FakeClient({})
    monkeypatch.setattr(kafka, "Producer", lambda config: fake)
    monkeypatch.setattr(kafka, "Consumer", lambda config: fake)
    yield fake


def checkpoint(
    *, abort_one_in: int = 0, commit_gap_s: float = 0.0, hung_after_s: float | None = None
) -> Checkpoint:
    producer = TransactionalProducer("fake:9092", transactional_id="t.matcher-3", timeout=1.0)
    consumer = CommittedConsumer("fake:9092", group_id=GROUP, client_id="matcher-3")
    return Checkpoint(
        producer,
        consumer,
        TOPICS,
        PARTITION,
        abort_one_in=abort_one_in,
        commit_gap_s=commit_gap_s,
        hung_after_s=hung_after_s,
    )


def batch(end: int, *values: bytes) -> OpenBatch:
    records = [Record("replies", 0, b"k", value, []) for value in values]
    return OpenBatch(records=records, commands=len(values), end=end)


def snapshot_due(end: int) -> list[Record]:
    return [Record("state_snapshots", PARTITION, b"3", f"state at {end}".encode(), [])]


def offsets(end: int) -> tuple[Any, ...]:
    return ("send_offsets", [(TOPICS.orders, PARTITION, end)], GROUP)


def abortable(name: str) -> KafkaError:
    return KafkaError(KafkaError._STATE, f"{name} failed", txn_requires_abort=True)


def fenced() -> KafkaError:
    return KafkaError(KafkaError._FENCED, "a newer instance took over", fatal=True)


def test_a_commit_begins_produces_the_batch_and_what_is_due_sends_the_offset_and_commits(
    client: FakeClient,
) -> None:
    cycle = checkpoint()
    first = batch(120, b"r1", b"r2")

    cycle.commit(first, snapshot_due)

    assert client.calls == [
        ("begin",),
        ("produce", TOPICS.replies, b"r1"),
        ("produce", TOPICS.replies, b"r2"),
        ("produce", TOPICS.state_snapshots, b"state at 120"),
        offsets(120),
        ("commit",),
    ]
    assert cycle.settle() is first
    assert cycle.transactions == 1 and cycle.background_commits == 0
    times = first.times
    assert 0 < times.begun_ns <= times.produced_ns <= times.offsets_sent_ns <= times.committed_ns


def test_a_background_commit_hands_its_batch_back_when_settled(client: FakeClient) -> None:
    cycle = checkpoint()
    first = batch(50, b"r1")

    cycle.commit(first, background=True)
    assert cycle.committing
    settled = cycle.settle()

    assert settled is first
    assert not cycle.committing and cycle.settle() is None
    assert client.calls[-2:] == [offsets(50), ("commit",)]
    assert cycle.background_commits == 1


def test_an_abortable_produce_error_aborts_before_any_offset_is_sent(client: FakeClient) -> None:
    cycle = checkpoint()
    client.fail["produce"] = [abortable("produce")]

    with pytest.raises(TransactionAborted):
        cycle.commit(batch(10, b"r1"), background=True)

    assert [call[0] for call in client.calls] == ["begin", "produce", "abort"]
    assert not cycle.committing


def test_an_abortable_commit_error_in_the_background_is_raised_by_settle(client: FakeClient) -> None:
    cycle = checkpoint()
    client.fail["commit"] = [abortable("commit")]
    cycle.commit(batch(10, b"r1"), background=True)

    with pytest.raises(TransactionAborted):
        cycle.settle()

    assert client.calls[-2:] == [("commit",), ("abort",)]
    assert not cycle.committing


def test_after_an_abort_the_next_batch_commits_as_usual(client: FakeClient) -> None:
    cycle = checkpoint()
    client.fail["send_offsets"] = [abortable("send_offsets")]
    with pytest.raises(TransactionAborted):
        cycle.commit(batch(10, b"r1"))
    client.calls.clear()
    again = batch(10, b"r1")

    cycle.commit(again)

    assert [call[0] for call in client.calls] == ["begin", "produce", "send_offsets", "commit"]
    assert cycle.settle() is again


def test_a_fenced_producer_is_fatal_and_aborts_nothing(client: FakeClient) -> None:
    cycle = checkpoint()
    client.fail["commit"] = [fenced()]
    cycle.commit(batch(10, b"r1"), background=True)

    with pytest.raises(FatalKafkaError) as raised:
        cycle.settle()

    assert raised.value.fenced
    assert ("abort",) not in client.calls
    assert not cycle.committing


def test_a_retriable_commit_error_is_retried_until_the_commit_succeeds(client: FakeClient) -> None:
    cycle = checkpoint()
    client.fail["commit"] = [KafkaError(KafkaError._TIMED_OUT, "slow coordinator", retriable=True)]
    first = batch(10, b"r1")

    cycle.commit(first)

    assert client.calls[-2:] == [("commit",), ("commit",)]
    assert cycle.settle() is first


def test_an_injected_abort_writes_the_records_then_aborts_without_an_offset(client: FakeClient) -> None:
    cycle = checkpoint(abort_one_in=2)
    cycle.commit(batch(10, b"r1"))
    cycle.settle()
    client.calls.clear()

    with pytest.raises(InjectedAbort):
        cycle.commit(batch(20, b"r2"), snapshot_due)

    assert [call[0] for call in client.calls] == ["begin", "produce", "produce", "flush", "abort"]
    assert not cycle.committing
    assert cycle.transactions == 2


def test_the_genesis_commits_alone_at_offset_zero_and_is_not_counted(client: FakeClient) -> None:
    cycle = checkpoint(abort_one_in=1)  # every counted transaction would abort

    cycle.commit_alone(snapshot_due(0), 0)

    assert client.calls == [
        ("begin",),
        ("produce", TOPICS.state_snapshots, b"state at 0"),
        offsets(0),
        ("commit",),
    ]
    assert cycle.transactions == 0 and not cycle.committing


def test_a_transaction_waits_the_gap_after_the_last_commit_returned(client: FakeClient) -> None:
    cycle = checkpoint(commit_gap_s=600.0)
    assert cycle.gap_left_s() == 0.0  # nothing committed yet

    cycle.commit(batch(10, b"r1"))
    cycle.settle()

    assert cycle.gap_left_s() > 0.0


def test_a_commit_the_client_never_answers_is_hung_once_overdue_and_settling_says_so(
    client: FakeClient,
) -> None:
    # As librdkafka's send_offsets_to_transaction does after a broker restart: past its own timeout.
    client.hang["send_offsets"] = never_answered = threading.Event()
    cycle = checkpoint(hung_after_s=0.3)
    began = time.monotonic()
    cycle.commit(batch(10, b"r1"), background=True)
    assert not cycle.commit_hung() and not cycle.commit_returned()

    with pytest.raises(CommitHung, match="unanswered after"):
        cycle.settle()

    assert time.monotonic() - began >= 0.3
    assert not cycle.committing
    never_answered.set()


def test_an_overdue_commit_is_hung_before_anything_waits_on_it(client: FakeClient) -> None:
    client.hang["commit"] = never_answered = threading.Event()
    cycle = checkpoint(hung_after_s=0.1)
    cycle.commit(batch(10, b"r1"), background=True)

    time.sleep(0.2)

    assert cycle.commit_hung() and cycle.committing
    never_answered.set()


def test_a_commit_waited_for_in_place_is_bounded_too(client: FakeClient) -> None:
    client.hang["commit"] = never_answered = threading.Event()
    cycle = checkpoint(hung_after_s=0.2)

    with pytest.raises(CommitHung):
        cycle.commit(batch(10, b"r1"))

    assert not cycle.committing and cycle.background_commits == 0
    never_answered.set()


def test_a_bounded_commit_waited_for_in_place_raises_its_error_at_once(client: FakeClient) -> None:
    cycle = checkpoint(hung_after_s=5.0)
    client.fail["send_offsets"] = [abortable("send_offsets")]

    with pytest.raises(TransactionAborted):
        cycle.commit(batch(10, b"r1"))

    assert not cycle.committing
    assert client.calls[-1] == ("abort",)
    cycle.commit(batch(10, b"r1"))
    assert cycle.settle() is not None


def test_a_transaction_committed_alone_is_bounded_too(client: FakeClient) -> None:
    client.hang["send_offsets"] = never_answered = threading.Event()
    cycle = checkpoint(hung_after_s=0.2)

    with pytest.raises(CommitHung):
        cycle.commit_alone(snapshot_due(40), 40)

    assert not cycle.committing
    never_answered.set()
