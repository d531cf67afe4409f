"""The exactly-once checkpoint of one partition: a batch's outputs and its consumed offset, together.

One transaction a batch: begin, produce the batch's records (then the snapshots due with it), add
the consumed offset, commit. The commit is milliseconds of waiting on the broker, so under load
it runs in a thread of its own while the matcher applies the next commands (``background``);
transactions still follow each other: the next begins only after :meth:`Checkpoint.settle`.

Errors follow librdkafka's transaction rules, as :class:`runtime.kafka.TransactionalProducer`
sorts them: a retriable one is retried inside the producer; an abortable one has the producer
abort the transaction and raise :class:`TransactionAborted`; a fatal one (being fenced by a newer
instance included) raises :class:`FatalKafkaError`. Either way the checkpoint is left with nothing
in flight, whichever thread the error came from. After an abort (or an :class:`InjectedAbort`) the
engine has run ahead of what is committed: the caller rebuilds it from the committed state and
rewinds its consumer to the committed offset (``Matcher.recover``), then commits on as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from matcher.processor import Record
from matcher.timing import TransactionTimes
from runtime.kafka import CommittedConsumer, TransactionAborted, TransactionalProducer
from runtime.topics import TopicNames


@dataclass
class OpenBatch:
    """Commands applied to the engine whose records wait for the transaction that will carry them."""

    records: list[Record] = field(default_factory=list)
    commands: int = 0
    end: int = 0  # the offset after the last command: what the transaction commits
    started: float = 0.0  # monotonic time its first command was being taken
    times: TransactionTimes = field(default_factory=TransactionTimes)


class CommitHung(Exception):
    """A commit the client never answered: the process must go, and its successor fence it.

    librdkafka's ``send_offsets_to_transaction`` can wait on a group coordinator for ever, past the
    timeout it was given, after the broker was killed and restarted (reported upstream as
    "rd_kafka_send_offsets_to_transaction() ignores timeout"). Past the transaction's own timeout
    the coordinator has aborted it anyway, so nothing it would commit can still be committed.
    """


class InjectedAbort(Exception):
    """A transaction aborted on purpose by the fault-injection setting."""


# What a failed transaction raises once it is aborted: the caller recovers and goes on.
ABORTED = (TransactionAborted, InjectedAbort)

# The records a transaction carries beside its batch's, given the offset it commits.
DueRecords = Callable[[int], Iterable[Record]]


def nothing_due(_end: int) -> Iterable[Record]:
    return ()


class Checkpoint:
    """The transactional producer's cycle for one partition's batches, one transaction at a time."""

    def __init__(
        self,
        producer: TransactionalProducer,
        consumer: CommittedConsumer,
        topics: TopicNames,
        partition: int,
        *,
        commit_gap_s: float = 0.0,
        abort_one_in: int = 0,
        hung_after_s: float | None = None,
    ) -> None:
        self._producer = producer
        self._consumer = consumer  # its group's offsets are the ones committed
        self._topic_of = topics.by_role()
        self._orders = topics.orders
        self.partition = partition
        self._commit_gap_s = commit_gap_s
        self._abort_one_in = abort_one_in  # fault injection: abort every Nth transaction (0 = never)
        self.transactions = 0
        self.background_commits = 0  # of them, committed while the next batch was being matched
        self._committing: Future[None] | None = None
        self._committing_batch: OpenBatch | None = None
        self._committed_at = 0.0  # monotonic time the last transaction's commit returned
        # A commit not returned this long after it began never will (None: no bound).
        self._hung_after_s = hung_after_s
        self._commit_began = 0.0  # monotonic time the transaction settling began

    def init(self) -> None:
        """Register with the coordinator: fences older instances and aborts what they left open."""
        self._producer.init()

    @property
    def committing(self) -> bool:
        """Whether a transaction is committing (or has committed) and not yet settled."""
        return self._committing is not None

    def commit_hung(self) -> bool:
        """Whether the transaction committing has been waited for longer than any commit can take."""
        if self._committing is None or self._hung_after_s is None:
            return False
        return time.monotonic() - self._commit_began > self._hung_after_s

    def commit_returned(self) -> bool:
        """Whether the transaction committing in the background is done: settling will not wait."""
        return self._committing is not None and self._committing.done()

    def commit(self, batch: OpenBatch, due: DueRecords = nothing_due, *, background: bool = False) -> None:
        """Begin a transaction with ``batch``'s records, then ``due(batch.end)``'s, and commit it with
        the consumed offset ``batch.end``: in a thread of its own, or before returning.

        Either way :meth:`settle` then hands the batch back. ``due`` is asked once the batch's
        records are queued, so what it does (forking a snapshot's writer) is timed as producing.
        """
        assert self._committing is None, "a transaction begins only once the previous one is settled"
        times = batch.times
        times.begun_ns = time.time_ns()
        self._commit_began = time.monotonic()
        self._producer.begin()
        self._produce(batch.records)
        self._produce(due(batch.end))
        times.produced_ns = time.time_ns()
        self.transactions += 1
        if self._inject_abort():
            # Written to the log first, then aborted: the records exist but must never be read.
            self._producer.flush()
            self._producer.abort()
            raise InjectedAbort(f"fault injection: transaction {self.transactions} aborted")
        if background:
            self.background_commits += 1
        if background or self._hung_after_s is not None:
            # With a bound, a commit waited for here runs in a thread too: a call the client never
            # answers must not hold the matcher's thread for ever (CommitHung).
            committing = self._commit_in_background(batch.end, times)
        else:
            self._commit(batch.end, times)
            committing = Future()
            committing.set_result(None)
        self._committing, self._committing_batch = committing, batch
        if not background:
            try:
                self._outcome(committing)
            except BaseException:
                self._committing = self._committing_batch = None
                raise

    def settle(self) -> OpenBatch | None:
        """The batch of the transaction committing, once committed (waited for); None if there is none.

        Raises what its commit raised (:data:`ABORTED` or :class:`FatalKafkaError`), or
        :class:`CommitHung` once it is overdue; nothing is in flight afterwards either way.
        """
        committing, batch = self._committing, self._committing_batch
        if committing is None or batch is None:
            return None
        self._committing = self._committing_batch = None
        self._outcome(committing)
        return batch

    def _outcome(self, committing: Future[None]) -> None:
        """Wait for ``committing`` until it is overdue; raises what it raised, or CommitHung."""
        bound = self._hung_after_s
        left_s = None if bound is None else max(self._commit_began + bound - time.monotonic(), 0.0)
        try:
            committing.result(timeout=left_s)
        except FutureTimeout:
            raise CommitHung(f"transaction {self.transactions} unanswered after {bound:.0f} s") from None

    def commit_alone(self, records: Iterable[Record], end: int) -> None:
        """One transaction of ``records`` and the consumed offset ``end``, outside the batch cycle.

        For the partition's genesis and a state snapshot the partition went quiet before any batch
        carried: neither counted, timed nor open to injected aborts; bounded as any commit is.
        """
        assert self._committing is None, "a transaction begins only once the previous one is settled"
        self._commit_began = time.monotonic()
        self._producer.begin()
        self._produce(records)
        if self._hung_after_s is None:
            self._commit(end, TransactionTimes())
        else:
            self._outcome(self._commit_in_background(end, TransactionTimes()))

    def gap_left_s(self) -> float:
        """How long until the coordinator has likely finished the last transaction and a new one may begin.

        A commit returns once the coordinator has decided it, before its markers are written; a
        transaction begun meanwhile is refused (CONCURRENT_TRANSACTIONS) and the client retries
        after a fixed 20 ms (adding the offsets: 100 ms and more). Measured here: back-to-back
        transactions took 47 ms at the median, 22 ms with 5 ms between them. With early replies
        the commands of that gap are answered anyway; without them, their replies wait the gap
        (5 ms at most) instead of the 20 ms retry it saves.
        """
        return max(0.0, self._committed_at + self._commit_gap_s - time.monotonic())

    def _commit_in_background(self, end: int, times: TransactionTimes) -> Future[None]:
        """Run :meth:`_commit` in a thread of its own; the future holds its outcome.

        A daemon thread, not a pool's: a commit the client never answers (seen after the broker
        was killed and restarted) must not keep the process from exiting once the matcher stops.
        """
        committing: Future[None] = Future()

        def commit() -> None:
            try:
                self._commit(end, times)
            except BaseException as exc:  # handed to settle(), which raises it in the matcher's thread
                committing.set_exception(exc)
            else:
                committing.set_result(None)

        threading.Thread(target=commit, name=f"commit-{self.partition}", daemon=True).start()
        return committing

    def _commit(self, end: int, times: TransactionTimes) -> None:
        """Add the consumed offset to the open transaction and commit it, noting when each step ended."""
        self._producer.send_offsets(self._consumer, self._offsets(end))
        times.offsets_sent_ns = time.time_ns()
        self._producer.commit()
        times.committed_ns = time.time_ns()
        self._committed_at = time.monotonic()

    def _offsets(self, end: int) -> list[TopicPartition]:
        return [TopicPartition(self._orders, self.partition, end)]

    def _produce(self, records: Iterable[Record]) -> None:
        topic_of = self._topic_of
        self._producer.produce_all(
            (topic_of[r.role], r.value, r.key, r.partition, r.headers) for r in records
        )

    def _inject_abort(self) -> bool:
        every = self._abort_one_in
        return every > 0 and self.transactions % every == 0
