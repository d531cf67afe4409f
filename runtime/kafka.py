"""Thin wrappers over confluent-kafka that every service shares, one concern each.

- :class:`IdempotentProducer`: a lazily created producer for writes outside transactions.
- :class:`CommittedConsumer`: a ``read_committed`` consumer whose offsets move only when
  the caller says so (explicitly, or inside a transaction).
- :class:`TransactionalProducer`: outputs and consumed offsets committed together.

Errors are handled the way librdkafka's transactions example documents them:
retriable → retry; abortable → abort the transaction, and the caller restores its state
and rewinds its consumer to the committed offsets (:class:`TransactionAborted`);
fatal, including being fenced by a newer instance → :class:`FatalKafkaError`, which the
service lets end the process with a non-zero code so its supervisor restarts it.
"""

from __future__ import annotations

import abc
import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from runtime.settings import Settings

log = logging.getLogger("kafka")
# librdkafka's own log lines, forwarded to Python logging instead of raw stderr.
librdkafka_log = logging.getLogger("librdkafka")

DEFAULT_TIMEOUT_S = 30.0
RETRY_PAUSE_S = 0.1
T = TypeVar("T")
Headers = Sequence[tuple[str, bytes]]
# (topic, value, key, partition, headers); the headers a list of (name, value) pairs.
OutgoingRecord = tuple[str, bytes | None, bytes | None, int, list[Any]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]

# Error codes meaning "a newer instance with the same transactional.id took over".
_FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})


def bootstrap_servers(settings: Settings) -> str:
    """Where the cluster is: ``EXCHANGE_KAFKA_BOOTSTRAP``, else the local broker's loopback port."""
    return settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"


def client_config(
    bootstrap: str, client_id: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The settings every client shares, then ``overrides``."""
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "logger": librdkafka_log,
        "error_cb": _log_client_error,
        **(overrides or {}),
    }


def admin_client(bootstrap: str, client_id: str = "exchange-admin") -> AdminClient:
    """An admin client (topics, metadata)."""
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": client_id}, logger=librdkafka_log)


def _log_client_error(error: KafkaError) -> None:
    # Most of these are transient (a broker restarting); fatal ones also surface on the next call.
    level = logging.ERROR if error.fatal() else logging.WARNING
    log.log(level, "kafka client error", extra={"code": error.name(), "reason": error.str()})


class ErrorKind(enum.Enum):
    """What to do about a Kafka error (librdkafka's classification)."""

    RETRIABLE = "retriable"  # try the same call again
    ABORTABLE = "abortable"  # abort the transaction, restore state, rewind to committed offsets
    FATAL = "fatal"  # the client cannot go on (fenced included): exit and let the supervisor restart


def classify(error: KafkaError) -> ErrorKind:
    """The error's kind; anything librdkafka marks neither retriable nor abortable is fatal."""
    if error.fatal():
        return ErrorKind.FATAL
    if error.txn_requires_abort():
        return ErrorKind.ABORTABLE
    if error.retriable():
        return ErrorKind.RETRIABLE
    return ErrorKind.FATAL


# Answers of a group coordinator that is starting, moving or finishing a transaction: they pass.
_COORDINATOR_BUSY_CODES = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError._TIMED_OUT,
    }
)


def _coordinator_busy(error: KafkaError) -> bool:
    return error.retriable() or error.code() in _COORDINATOR_BUSY_CODES


# Answers about a partition whose leader is being elected or moving (a topic just created): they pass.
_LEADER_MOVING_CODES = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}
)


def _leader_moving(error: KafkaError) -> bool:
    return error.retriable() or error.code() in _LEADER_MOVING_CODES


def _retrying(
    call: Callable[[float], T], passes: Callable[[KafkaError], bool], timeout: float, what: str
) -> T:
    """``call(time left)`` again while it fails with an error that ``passes``, until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(max(deadline - time.monotonic(), 1.0))
        except KafkaException as exc:
            error = error_of(exc)
            if not passes(error) or time.monotonic() > deadline:
                raise
            log.info("retrying", extra={"operation": what, "reason": error.str()})
            time.sleep(RETRY_PAUSE_S)


def error_of(exc: KafkaException) -> KafkaError:
    """The KafkaError inside a KafkaException."""
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error
    return KafkaError(KafkaError._FAIL, str(exc))


class FatalKafkaError(Exception):
    """The client cannot continue (e.g. fenced by a newer instance): exit non-zero and restart."""

    def __init__(self, operation: str, error: KafkaError) -> None:
        super().__init__(f"{operation}: {error.name()}: {error.str()}")
        self.error = error

    @property
    def fenced(self) -> bool:
        """True when a newer producer with the same transactional.id took over."""
        return self.error.code() in _FENCED_CODES


class TransactionAborted(Exception):
    """The transaction was aborted: restore the state it began with and rewind to committed offsets."""

    def __init__(self, operation: str, error: KafkaError) -> None:
        super().__init__(f"{operation}: {error.name()}: {error.str()}")
        self.error = error


class _RecordWriter(abc.ABC):
    """What both producers share: ``produce`` with local backpressure; each has its own error policy."""

    @abc.abstractmethod
    def _client(self) -> Producer: ...

    @abc.abstractmethod
    def _produce_failed(self, error: KafkaError) -> NoReturn: ...

    def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int = -1,
        headers: Headers | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one record; ``on_delivery(error, message)`` runs when a later call serves reports."""
        producer = self._client()
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    key,
                    partition=partition,
                    headers=list(headers or ()),
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                producer.poll(0.1)  # the local queue is full: serve delivery reports to make room
            except KafkaException as exc:
                self._produce_failed(error_of(exc))

    def produce_all(self, records: Iterable[OutgoingRecord]) -> None:
        """Queue every ``(topic, value, key, partition, headers)`` record, in order, as ``produce`` does.

        One loop around the client's own call: for many small records the per-record wrapper is
        a noticeable share of the cost. ``headers`` must be a list (it is handed on as it is).
        """
        producer = self._client()
        for topic, value, key, partition, headers in records:
            try:
                producer.produce(topic, value, key, partition, headers=headers)
            except BufferError:  # the local queue is full: the slow path waits for room
                self.produce(topic, value, key=key, partition=partition, headers=headers)
            except KafkaException as exc:
                self._produce_failed(error_of(exc))


class IdempotentProducer(_RecordWriter):
    """A producer for writes outside transactions: idempotent, acks=all, created on first use."""

    def __init__(self, bootstrap: str, *, client_id: str, config: Mapping[str, Any] | None = None) -> None:
        self._config = client_config(
            bootstrap, client_id, {"enable.idempotence": True, "acks": "all", **(config or {})}
        )
        self._producer: Producer | None = None

    def _client(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._config)
        return self._producer

    def _produce_failed(self, error: KafkaError) -> NoReturn:
        raise FatalKafkaError("produce", error)

    def start(self, topic: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Create the producer now and learn ``topic``'s leaders, instead of at the first record.

        The client asks for its producer id as soon as it exists, so a producer started before a
        service's own start-up work sends its first record at once rather than after that wait.
        """
        self._client().list_topics(topic, timeout=timeout)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports; returns how many were served."""
        return self._producer.poll(timeout) if self._producer is not None else 0

    def flush(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Wait until every queued record is delivered (or failed); TimeoutError if some are left."""
        if self._producer is not None and (left := self._producer.flush(timeout)) > 0:
            raise TimeoutError(f"{left} record(s) not delivered within {timeout} s")

    def close(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Deliver what is queued, then release the producer."""
        try:
            self.flush(timeout)
        finally:
            self._producer = None


class CommittedConsumer:
    """A ``read_committed`` consumer with explicit offsets: nothing is committed automatically.

    Partitions are assigned explicitly (each matcher reads its own partition, each relay
    every partition). Where reading starts is the group's committed offset, else the
    beginning. Offsets move by :meth:`commit`, or atomically with a transaction's outputs
    through :meth:`TransactionalProducer.commit`.
    """

    def __init__(
        self, bootstrap: str, *, group_id: str, client_id: str, config: Mapping[str, Any] | None = None
    ) -> None:
        settings = {
            "group.id": group_id,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Partition ends are reported, so a reader can tell "caught up" from "nothing yet".
            "enable.partition.eof": True,
            **(config or {}),
        }
        self._consumer = Consumer(client_config(bootstrap, client_id, settings))
        self._at_end: set[tuple[str, int]] = set()
        # Taken now, in the thread that made the consumer. The client lets one thread in at a time,
        # so a commit thread asking for it while another polls in a tight loop could wait forever
        # (seen: a background commit stuck for minutes). It never changes: partitions are
        # assigned, so the consumer never joins the group and has no generation or member id.
        self._group_metadata = self._consumer.consumer_group_metadata()

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Read these partitions; a partition given without offset starts at the committed offset."""
        self._consumer.assign(list(partitions))
        self._at_end.clear()

    def assignment(self) -> list[TopicPartition]:
        return self._consumer.assignment()

    def poll(self, timeout: float) -> Message | None:
        """The next committed record, or None if none came within ``timeout`` or a partition end came."""
        message = self._consumer.poll(timeout)
        if message is None:
            return None
        return message if self._is_record(message) else None

    def consume(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` committed records that arrive within ``timeout``: poll, in bulk."""
        return [m for m in self._consumer.consume(max_messages, timeout) if self._is_record(m)]

    def available(self, max_messages: int, wait_s: float) -> list[Message]:
        """The first record waited for ``wait_s`` at most, then up to ``max_messages`` - 1 more already here.

        Not a bulk consume with a timeout: librdkafka's waits its whole timeout unless ``max_messages``
        arrive, which a live reader would add to every record's latency.
        """
        first = self.poll(wait_s)
        return [] if first is None else [first, *self.consume(max_messages - 1, 0)]

    def _is_record(self, message: Message) -> bool:
        """True for a record; notes a partition's end and deals with errors otherwise."""
        place = (message.topic() or "", message.partition() or 0)
        error = message.error()
        if error is None:
            self._at_end.discard(place)
            return True
        if error.code() == KafkaError._PARTITION_EOF:
            self._at_end.add(place)
        elif error.fatal():
            raise FatalKafkaError("poll", error)
        else:
            # librdkafka recovers from the rest by itself (a broker restarting, a leader moving).
            log.warning("consumer error", extra={"code": error.name(), "reason": error.str()})
        return False

    def at_end(self, topic: str, partition: int) -> bool:
        """True once the reader has consumed everything committed so far in the partition."""
        return (topic, partition) in self._at_end

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read an assigned partition from ``offset`` next (what was fetched past it is dropped)."""
        self._consumer.seek(TopicPartition(topic, partition, offset))
        self._at_end.discard((topic, partition))

    def offset_for_time(
        self, topic: str, partition: int, timestamp_ms: int, timeout: float = DEFAULT_TIMEOUT_S
    ) -> int | None:
        """The first offset whose record timestamp is at or after ``timestamp_ms``; None if none is."""
        (found,) = self._consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)], timeout)
        return int(found.offset) if found.offset >= 0 else None

    def watermarks(self, topic: str, partition: int, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[int, int]:
        """The partition's first and next offsets as the broker tells them now (its leader's answer:
        asked again while the partition has none yet)."""
        low, high = _retrying(
            lambda left: self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=left),
            _leader_moving,
            timeout,
            "watermarks",
        )
        return int(low), int(high)

    def position(self) -> list[TopicPartition]:
        """The next offset to read in each assigned partition (what a transaction commits)."""
        return self._consumer.position(self._consumer.assignment())

    def end_offset(self, topic: str, partition: int) -> int | None:
        """The partition's end as last fetched (no request; None before the first fetch)."""
        _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        return high if high >= 0 else None

    def high_watermark(self, topic: str, partition: int, timeout: float = DEFAULT_TIMEOUT_S) -> int:
        """The partition's end as the broker tells it now (one request)."""
        _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        return int(high)

    def partitions_of(self, topic: str, timeout: float = DEFAULT_TIMEOUT_S) -> list[int]:
        """The partition numbers of ``topic``."""
        metadata = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise FatalKafkaError("list_topics", KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, topic))
        return sorted(metadata.partitions)

    def committed(
        self, partitions: Sequence[TopicPartition], timeout: float = DEFAULT_TIMEOUT_S
    ) -> dict[tuple[str, int], int | None]:
        """The group's committed offset of each partition (None where nothing is committed).

        A group coordinator that is moving or still loading answers with an error that passes;
        those are retried until ``timeout``.
        """
        found = _retrying(
            lambda left: self._consumer.committed(list(partitions), timeout=left),
            _coordinator_busy,
            timeout,
            "committed offsets",
        )
        return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in found}

    def commit(self, offsets: Sequence[TopicPartition] | None = None) -> None:
        """Commit ``offsets`` (default: the current position) synchronously, outside any transaction."""
        self._consumer.commit(offsets=list(offsets or self.position()), asynchronous=False)

    def rewind_to_committed(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Go back to the committed offsets (or the beginning), as after an aborted transaction."""
        assigned = self._consumer.assignment()
        committed = self._consumer.committed(assigned, timeout=timeout)
        restart = [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ]
        self.assign(restart)

    def group_metadata(self) -> Any:
        """The consumer group's metadata, for ``send_offsets_to_transaction``."""
        return self._group_metadata

    def close(self) -> None:
        self._consumer.close()


class TransactionalProducer(_RecordWriter):
    """A transactional producer: records and consumed offsets become visible together, or never.

    ``transactional_id`` must be stable per unit of work (per matcher partition): a new
    instance then fences the old one, so a zombie can never commit.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        transactional_id: str,
        client_id: str | None = None,
        config: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        settings = {"transactional.id": transactional_id, **(config or {})}
        self._producer = Producer(client_config(bootstrap, client_id or transactional_id, settings))
        self.transactional_id = transactional_id
        self.timeout = timeout

    def init(self) -> None:
        """Register with the coordinator; fences older instances and aborts what they left open."""
        self._call("init_transactions", self._producer.init_transactions)

    def begin(self) -> None:
        """Start a transaction (local; the broker hears of it with the first record)."""
        self._call("begin_transaction", lambda _timeout: self._producer.begin_transaction())

    def _client(self) -> Producer:
        return self._producer

    def _produce_failed(self, error: KafkaError) -> NoReturn:
        self._handle("produce", error)

    def send_offsets(
        self, consumed: CommittedConsumer, offsets: Sequence[TopicPartition] | None = None
    ) -> None:
        """Make ``offsets`` (default: ``consumed``'s current position) part of the open transaction."""
        positions, group = list(offsets or consumed.position()), consumed.group_metadata()
        self._call(
            "send_offsets_to_transaction",
            lambda timeout: self._producer.send_offsets_to_transaction(positions, group, timeout),
        )

    def commit(
        self, consumed: CommittedConsumer | None = None, offsets: Sequence[TopicPartition] | None = None
    ) -> None:
        """Commit the transaction, with ``offsets`` of ``consumed``'s group (default: its position).

        A consumer that has read on past the transaction's input names the input's end in ``offsets``.
        """
        if consumed is not None:
            self.send_offsets(consumed, offsets)
        self._call("commit_transaction", self._producer.commit_transaction)

    def abort(self) -> None:
        """Abort the open transaction: none of its records or offsets will ever be visible."""
        self._call("abort_transaction", self._producer.abort_transaction, abortable_ok=False)

    @contextmanager
    def transaction(self, consumed: CommittedConsumer | None = None) -> Iterator[None]:
        """Begin; commit (with ``consumed``'s offsets) when the block ends, abort if it raises."""
        self.begin()
        try:
            yield
        except (FatalKafkaError, TransactionAborted):
            raise
        except BaseException:
            self.abort()
            raise
        self.commit(consumed)

    def flush(self, timeout: float | None = None) -> None:
        """Send what is queued (the records stay invisible to read_committed readers until commit)."""
        self._producer.flush(self.timeout if timeout is None else timeout)

    def _call(self, operation: str, call: Callable[[float], None], *, abortable_ok: bool = True) -> None:
        """Run ``call(timeout)``, retrying retriable errors until ``self.timeout`` is spent."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                call(max(deadline - time.monotonic(), 0.1))
                return
            except KafkaException as exc:
                error = error_of(exc)
                if classify(error) is ErrorKind.RETRIABLE and time.monotonic() < deadline:
                    log.warning("retrying", extra={"operation": operation, "reason": error.str()})
                    time.sleep(RETRY_PAUSE_S)
                    continue
                self._handle(operation, error, abortable_ok=abortable_ok)

    def _handle(self, operation: str, error: KafkaError, *, abortable_ok: bool = True) -> NoReturn:
        if classify(error) is ErrorKind.ABORTABLE and abortable_ok:
            log.warning("aborting transaction", extra={"operation": operation, "reason": error.str()})
            self.abort()
            raise TransactionAborted(operation, error)
        # Fatal, fenced, or retriable for longer than we wait: this producer is done.
        raise FatalKafkaError(operation, error)


def read_to_end(
    bootstrap: str,
    topic: str,
    partition: int,
    *,
    start: int = OFFSET_BEGINNING,
    client_id: str = "exchange-reader",
    isolation: str = "read_committed",
    guard_s: float = 300.0,
) -> Iterator[Message]:
    """Every record of a partition from ``start`` to its end as ``isolation`` sees it, in offset order.

    The end is the last stable offset for ``read_committed``: records of open transactions are
    not waited for. A reader that makes no progress for ``guard_s`` raises TimeoutError.
    """
    reader = CommittedConsumer(
        bootstrap,
        group_id=f"{client_id}.{uuid.uuid4().hex}",
        client_id=client_id,
        config={"isolation.level": isolation, "fetch.wait.max.ms": 50},
    )
    try:
        reader.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + guard_s
        while not reader.at_end(topic, partition):
            message = reader.poll(0.2)
            if message is not None:
                deadline = time.monotonic() + guard_s
                yield message
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] was not read to its end within {guard_s:.0f} s")
    finally:
        reader.close()
