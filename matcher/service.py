"""`exchange matcher --partition P`: one partition of `orders`, matched exactly once.

The loop: take a batch of commands (bounded by count and time), apply each to the engine,
and in **one Kafka transaction** produce every output (replies, executions, book updates,
snapshots, dead letters) together with the consumed offset. A crash at any moment leaves
either the whole batch committed or none of it; recovery (the last state snapshot, then the
log up to the committed offset, applied without producing) brings the engine back to exactly
the state the committed outputs describe.

Errors follow librdkafka's transaction rules: retriable ones are retried inside the
wrappers; an abortable one aborts the batch and recovers; a fatal one (being fenced by a
newer instance included) ends the process with a non-zero code for its supervisor.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import wait
from itertools import islice
from typing import Any

from confluent_kafka import Message, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import Field

from matcher.checkpoint import ABORTED, Checkpoint, CommitHung, OpenBatch
from matcher.core import SymbolParams
from matcher.genesis import genesis_key, read_genesis, registry_differences
from matcher.metrics import MatcherMetrics
from matcher.processor import Processor, Record, Tally, record_offset
from matcher.recovery import RecoveryError, StateSnapshot, latest_snapshot, replay_orders, state_snapshot_key
from matcher.snapshots import (
    SNAPSHOT_SCHEMA,
    PendingSnapshot,
    SnapshotWriter,
    collector_paused,
    encoded_state_snapshot,
)
from matcher.timing import Take, TransactionTimes
from matcher.wire import core_params
from runtime import native
from runtime.errors import UserError
from runtime.health import Health, serve_ops
from runtime.kafka import (
    CommittedConsumer,
    FatalKafkaError,
    IdempotentProducer,
    TransactionalProducer,
    bootstrap_servers,
)
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.symbols import SymbolRegistry, load_registry
from runtime.topics import STATE_SNAPSHOT_MAX_BYTES, TopicNames
from schemas import Codec, default_codec

log = logging.getLogger("matcher")

EXIT_FATAL = 3
IDLE_POLL_S = 0.1
GAUGE_EVERY_S = 1.0
# How long a clean stop waits for a state snapshot still being written (seconds at a million orders).
SNAPSHOT_AT_STOP_WAIT_S = 15.0


class MatcherSettings(Settings):
    """The matcher's own settings (``EXCHANGE_MATCHER_*``) beside the shared ones."""

    matcher_batch_max_commands: int = Field(
        default=1000, ge=1, description="commands per transaction, at most"
    )
    matcher_batch_max_ms: int = Field(default=20, ge=0, description="a batch waits at most this long to fill")
    matcher_snapshot_every_commands: int = Field(default=100_000, ge=1, description="state snapshot cadence")
    matcher_snapshot_every_s: float = Field(default=60.0, gt=0, description="state snapshot cadence in time")
    matcher_book_snapshot_every_s: float = Field(default=10.0, gt=0, description="book snapshot cadence")
    matcher_ops_host: str = Field(default="127.0.0.1", description="address of /healthz, /readyz, /metrics")
    matcher_ops_port: int = Field(default=0, ge=0, le=65535, description="port of the ops endpoints; 0 = any")
    matcher_early_replies: bool = Field(
        default=True,
        description="also write each reply to `replies-early` as soon as it is computed, untransacted",
    )
    matcher_commit_gap_ms: float = Field(
        default=5.0,
        ge=0,
        description="a transaction begins at least this long after the previous one committed",
    )
    matcher_slow_transaction_ms: int = Field(
        default=200, ge=1, description="log a transaction slower than this, with its phases"
    )
    matcher_fault_abort_one_in: int = Field(
        default=0, ge=0, description="fault injection: abort every Nth transaction (0 = never)"
    )


# The matcher's Kafka clients (the pipeline benchmark's pass-through loop uses the same).
PRODUCER_CONFIG: dict[str, Any] = {
    "linger.ms": 2,
    "compression.type": "lz4",
    "message.max.bytes": STATE_SNAPSHOT_MAX_BYTES,
    # A dead instance's open transaction blocks read_committed readers until it times out or
    # a new instance fences it; batches take milliseconds, snapshots seconds.
    "transaction.timeout.ms": 20_000,
    # A transaction begun while the coordinator still writes the last one's markers is refused
    # (CONCURRENT_TRANSACTIONS) and retried after this backoff, doubling: librdkafka's 100 ms
    # default made adding the offsets take 100 ms whenever the commit gap was too short, the
    # pipeline's worst spikes. Measured back to back on one broker: 101 ms at the median, 7.5 ms
    # with 5 ms (max 50 ms) here.
    "retry.backoff.ms": 5,
    "retry.backoff.max.ms": 50,
}
# The broker answers a fetch as soon as a record arrives, so a longer wait adds no latency; it
# only bounds how often an idle consumer asks: 5 ms had four idle matchers keep a fifth of a
# core of the broker busy (7% with 100 ms).
CONSUMER_CONFIG: dict[str, Any] = {"fetch.wait.max.ms": 100, "enable.partition.eof": True}
# The early replies' producer: a gateway waits on every record, so each is sent at once.
EARLY_PRODUCER_CONFIG: dict[str, Any] = {"linger.ms": 0}
# Past its transaction's timeout the coordinator has aborted it: a commit still unanswered a few
# seconds later is one the client will never answer (checkpoint.CommitHung).
COMMIT_HUNG_AFTER_S = PRODUCER_CONFIG["transaction.timeout.ms"] / 1000 + 5.0
# While a commit is in flight (with early replies on), or the gap after one runs, new commands
# are looked for this often.
COMMITTING_POLL_S = 0.001
# How long a stopping matcher waits for its last early replies to be delivered.
EARLY_FLUSH_S = 5.0


def next_batch(
    consumer: CommittedConsumer,
    topic: str,
    partition: int,
    limit: int,
    max_ms: int,
    *,
    wait_s: float = IDLE_POLL_S,
) -> list[Message]:
    """Up to ``limit`` records (none if ``limit`` is 0): the first waited for ``wait_s`` at most,
    then more for ``max_ms``.

    The first record is polled for, not consumed in bulk (CommittedConsumer.available).
    """
    if limit < 1:
        return []
    batch = consumer.available(limit, wait_s)
    if not batch:
        return []
    deadline = time.monotonic() + max_ms / 1000
    while len(batch) < limit and not consumer.at_end(topic, partition):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        message = consumer.poll(left)
        if message is not None:
            batch.append(message)
            batch += consumer.consume(limit - len(batch), 0)
    return batch


# The batch loop allocates many short-lived dicts and tuples: collecting the youngest
# generation every 700 allocations (the default) costs about a fifth of the throughput.
GC_THRESHOLDS = (20_000, 20, 100)
# Every so many committed commands, what has lived through them joins the frozen state: a full
# collection walks only what came since. Without it, the orders resting and the finished orders
# remembered for retries pile up, and every full collection walked them all: 70-130 ms pauses a few
# seconds apart after 200k commands (collecting nothing), the pipeline's worst latency spikes.
# Freezing is O(1) (a list splice). Resting orders and levels die by reference counting when they
# leave the book; the engine as a whole (whose parts point at each other) is handed back to the
# collector when a recovery replaces it (_release_frozen_state).
GC_FREEZE_EVERY_COMMANDS = 10_000


def _freeze_state() -> None:
    """Keep the collector off the state just built: it lives until the next recovery, and walking a
    million resting orders on every full collection would stall matching."""
    gc.collect()
    gc.freeze()


def _release_frozen_state() -> None:
    """Let the collector have the state of an engine being replaced (its orders and levels point at
    each other, so only the collector can free them), and free it now."""
    gc.unfreeze()
    gc.collect()


def transactional_id(prefix: str, partition: int) -> str:
    """Stable per partition, so a new matcher of the partition fences any older one."""
    return f"{prefix}matcher-{partition}"


def group_id(prefix: str, partition: int) -> str:
    """The consumer group whose committed offset is the matcher's progress in its partition."""
    return f"{prefix}matcher-{partition}"


class Matcher:
    """One partition's matcher: recovery, then the transactional batch loop."""

    def __init__(
        self,
        settings: MatcherSettings,
        partition: int,
        *,
        registry: SymbolRegistry | None = None,
        codec: Codec | None = None,
        shutdown: Shutdown | None = None,
        metrics_registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.settings = settings
        self.registry = registry or load_registry(settings.symbols_file)
        if not 0 <= partition < self.registry.partition_count:
            raise UserError(
                f"partition {partition} does not exist: "
                f"the registry has {self.registry.partition_count} partitions"
            )
        self.partition = partition
        self.codec = codec or default_codec()
        self.topics = TopicNames.with_prefix(settings.topic_prefix)
        self.shutdown = shutdown or Shutdown()
        self.health = Health()
        self.metrics_registry = metrics_registry
        self.metrics = MatcherMetrics(partition, metrics_registry)
        bootstrap = bootstrap_servers(settings)
        self.consumer = CommittedConsumer(
            bootstrap,
            group_id=group_id(settings.topic_prefix, partition),
            client_id=f"matcher-{partition}",
            config=CONSUMER_CONFIG,
        )
        producer = TransactionalProducer(
            bootstrap,
            transactional_id=transactional_id(settings.topic_prefix, partition),
            config=PRODUCER_CONFIG,
        )
        self.checkpoint = Checkpoint(
            producer,
            self.consumer,
            self.topics,
            partition,
            commit_gap_s=settings.matcher_commit_gap_ms / 1000,
            abort_one_in=settings.matcher_fault_abort_one_in,
            hung_after_s=COMMIT_HUNG_AFTER_S,
        )
        self.bootstrap = bootstrap
        self.early = (
            IdempotentProducer(
                bootstrap, client_id=f"matcher-{partition}-early", config=EARLY_PRODUCER_CONFIG
            )
            if settings.matcher_early_replies
            else None
        )
        self.processor = self._fresh_processor()
        self.next_offset = 0
        self.since_snapshot = 0
        self.since_freeze = 0  # commands committed since the collector last froze what lives
        self.last_snapshot_at = time.monotonic()
        self.last_book_snapshot_at = time.monotonic()
        self.touched: set[str] = set()
        self._open = OpenBatch()
        self._snapshots = SnapshotWriter(self.codec, partition)
        self._snapshot: PendingSnapshot | None = None
        self.last_ts = 0
        self._gauges_at = 0.0
        # Called with every committed transaction's times (the pipeline benchmark's phase breakdown).
        self.on_committed: Callable[[TransactionTimes], None] | None = None

    @property
    def transactions(self) -> int:
        """Transactions begun with a batch so far."""
        return self.checkpoint.transactions

    @property
    def background_commits(self) -> int:
        """Of them, committed while the next batch was being matched."""
        return self.checkpoint.background_commits

    # --- lifecycle -------------------------------------------------------------------------------

    def run(self) -> int:
        """Recover, then match until asked to stop; the exit code for the process."""
        ops = serve_ops(
            self.health, self.settings.matcher_ops_host, self.settings.matcher_ops_port, self.metrics_registry
        )
        where = {"port": ops.port, "partition": self.partition, "native": native.status()}
        log.info("ops endpoints", extra=where)
        try:
            self.health.not_ready("recovering")
            self.checkpoint.init()  # fences older instances; their open transaction is aborted
            if self.early is not None:
                # Ready (producer id, leaders) by the first command: an early reply still queued
                # when its transaction has committed would be lost with a crash.
                self.early.start(self.topics.replies_early)
            gc.set_threshold(*GC_THRESHOLDS)
            self.recover()
            self.health.ready()
            while not self.shutdown.requested:
                self.run_once()
            self._settle_before_stopping()
            log.info("stopped", extra={"partition": self.partition, "signal": self.shutdown.signal_name})
            return 0
        except FatalKafkaError as exc:
            self.health.dead("fenced" if exc.fenced else "fatal kafka error")
            log.error("fatal kafka error; exiting: %s", exc, extra={"fenced": exc.fenced})
            return EXIT_FATAL
        except CommitHung as exc:
            self.health.dead("commit hung")
            log.error("commit hung; exiting so that a new instance fences it: %s", exc)
            return EXIT_FATAL
        except RecoveryError as exc:
            # Restarting would meet the same state: say what is wrong in one line and stop.
            self.health.dead("recovery failed")
            log.error("recovery failed; exiting: %s", exc)
            return EXIT_FATAL
        finally:
            self._snapshots.close()
            self.consumer.close()
            self._close_early()
            ops.stop()

    def _close_early(self) -> None:
        if self.early is None:
            return
        try:
            self.early.close(EARLY_FLUSH_S)
        except TimeoutError as exc:  # their committed copies are in `replies`: gateways read those too
            log.warning("early replies not delivered at stop", extra={"reason": str(exc)})

    def run_once(self) -> None:
        """Apply what has arrived; commit it, in the background when a full batch is waiting.

        A commit is milliseconds of waiting on the broker. Under load (a full batch) it runs in a
        thread of its own while this one goes on applying commands, which the next transaction
        then carries, so commits cost no matching time. A batch that is not full commits only
        once nothing more is waiting (the partition's end is reached) or its first command has
        waited ``matcher_batch_max_ms``; it commits before the next is taken, as a plain loop
        would: starting a transaction right after the previous commit meets the coordinator still
        finishing it (CONCURRENT_TRANSACTIONS, retried with a backoff), which costs more latency
        than the overlap saves. Transactions follow each other either way; the engine may run
        ahead of what is committed, and an abort rebuilds it from the committed state anyway.
        """
        limit = self.settings.matcher_batch_max_commands
        early = self.early is not None
        try:
            # The open batch's clock starts here if this call brings its first command: under load
            # that is when the command came; when idle it is earlier, so the batch closes sooner.
            taking_since = time.monotonic()
            batch = next_batch(
                self.consumer,
                self.topics.orders,
                self.partition,
                limit - self._open.commands,
                # With early replies a take is answered at once: gathering more would only delay it
                # (the open batch still closes by count, time and the partition's end, as ever).
                0 if early else self._batch_ms_left(),
                wait_s=self._wait_s(),
            )
            if batch:
                self.apply(batch, taking_since, time.time_ns())
            checkpoint = self.checkpoint
            idle = not batch and not early  # with early replies, commands are answered while committing
            if checkpoint.committing and (
                checkpoint.commit_returned()
                or idle
                or self._open.commands >= limit
                or checkpoint.commit_hung()
            ):
                self.settle()
            if not checkpoint.committing and self._open.commands:
                full = self._open.commands >= limit
                closed = full or self._caught_up() or self._batch_ms_left() == 0
                if closed and checkpoint.gap_left_s() == 0:
                    self.start_commit(background=full or early)
            elif not checkpoint.committing and self._snapshot_finished():
                self._commit_snapshot_alone()  # the partition went quiet: no batch would carry it
        except ABORTED as exc:
            self.metrics.aborts.inc()
            log.warning("transaction aborted; recovering", extra={"reason": str(exc)})
            self.health.not_ready("recovering after an aborted transaction")
            self.recover()
            self.health.ready()
        self._update_gauges()

    def _wait_s(self) -> float:
        """How long to wait for the first command of a take.

        While a commit is in flight: without early replies, only what has arrived is taken (nothing:
        wait for the commit); with them, a command that arrives is answered at once, so it is waited
        for in short steps until the commit is done.
        """
        if not self.checkpoint.committing:
            # Commands waiting for the gap after the last commit wait no longer than that.
            if self._open.commands:
                return max(self.checkpoint.gap_left_s(), COMMITTING_POLL_S)
            return IDLE_POLL_S
        return COMMITTING_POLL_S if self.early is not None else 0.0

    def _caught_up(self) -> bool:
        """Whether every command committed to `orders` so far has been taken."""
        return self.consumer.at_end(self.topics.orders, self.partition)

    def _batch_ms_left(self) -> int:
        """How much longer the open batch may wait to fill (``batch_max_ms`` from its first command)."""
        max_ms = self.settings.matcher_batch_max_ms
        if not self._open.commands:
            return max_ms
        waited_ms = (time.monotonic() - self._open.started) * 1000
        return max(0, math.ceil(max_ms - waited_ms))

    # --- recovery --------------------------------------------------------------------------------

    def recover(self) -> None:
        """Rebuild the engine at the committed offset: last state snapshot, then replay without emitting."""
        started = time.monotonic()
        orders = self.topics.orders
        committed = self.consumer.committed([TopicPartition(orders, self.partition)])[
            (orders, self.partition)
        ]
        snapshots = self.topics.state_snapshots
        snapshot = latest_snapshot(self.bootstrap, snapshots, self.partition, self.codec)
        if snapshot is None and committed is not None:  # none readable: the genesis still is
            snapshot = read_genesis(self.bootstrap, snapshots, self.partition, self.codec)
        read_at = time.monotonic()
        self.processor = self._fresh_processor()
        _release_frozen_state()
        if snapshot is None:
            if committed is not None:
                raise RecoveryError(
                    f"{orders}[{self.partition}] has commands committed up to offset {committed} but "
                    "no state snapshot, not even the genesis every partition starts with: the "
                    "state-snapshots topic was deleted or made anew, and the state cannot be rebuilt"
                )
            snapshot, committed = self._write_genesis(), 0
        if committed is None or snapshot.orders_offset > committed:
            raise RecoveryError(
                f"state snapshot covers offset {snapshot.orders_offset} but the committed offset is "
                f"{committed}: the consumer group's offsets were reset"
            )
        with collector_paused():  # a third of the time at a million orders
            self.processor.engine.restore(snapshot.state)
        # Out of the collector's sight before the replay, which would walk it on every full
        # collection; restoring made no garbage worth a collection first.
        gc.freeze()
        start = snapshot.orders_offset
        end = committed
        restored_at = time.monotonic()
        replayed = replay_orders(self.processor, self.consumer, orders, start, end)
        self._report_registry_differences()
        _freeze_state()
        self.consumer.assign([TopicPartition(orders, self.partition, end)])
        self.next_offset = end
        self.since_snapshot = replayed
        self.touched.clear()
        self._open = OpenBatch()
        seconds = time.monotonic() - started
        self.metrics.recovery_seconds.set(seconds)
        self.metrics.replayed_commands.set(replayed)
        self.metrics.committed_offset.set(end)
        log.info(
            "recovered",
            extra={
                "partition": self.partition,
                "snapshot_offset": snapshot.orders_offset,
                "committed_offset": end,
                "replayed": replayed,
                "resting": self.processor.engine.resting_count(),
                "seconds": round(seconds, 3),
                # where the time went: reading the snapshot, restoring the engine, replaying the log
                "snapshot_read_s": round(read_at - started, 3),
                "restore_s": round(restored_at - read_at, 3),
                "replay_s": round(started + seconds - restored_at, 3),
            },
        )

    def _fresh_processor(self) -> Processor:
        """A processor whose engine holds the registry's symbols of this partition (its genesis)."""
        symbols: Iterable[SymbolParams] = map(core_params, self.registry.symbols_of_partition(self.partition))
        return Processor(
            self.partition, self.registry.partition_count, self.codec, symbols, self.topics.orders
        )

    def _write_genesis(self) -> StateSnapshot:
        """Commit the partition's starting state, the registry's symbols, before its first command.

        The registry file seeds a new partition; from then on the log is the truth (DESIGN.md):
        the genesis is a state snapshot covering no command, written once under a key of its own
        (compaction keeps it beside the latest snapshot), in one transaction with the consumed
        offset 0, so a partition either has both or neither. Recovery and ``exchange verify``
        start from it, and a later edit of the file changes nothing for a replay.
        """
        ts_ns = time.time_ns()
        value = encoded_state_snapshot(self.codec, self.processor.engine, self.partition, 0, ts_ns)
        headers = self.codec.trusted_writer(SNAPSHOT_SCHEMA)[1]
        snapshot = Record(
            "state_snapshots", self.partition, state_snapshot_key(self.partition), value, headers
        )
        genesis = snapshot._replace(key=genesis_key(self.partition))
        self.checkpoint.commit_alone([genesis, snapshot], 0)
        symbols = [params.symbol for params in self.processor.engine.symbols()]
        log.info("genesis written", extra={"partition": self.partition, "symbols": symbols})
        return StateSnapshot(0, self.processor.engine.snapshot())

    def _report_registry_differences(self) -> None:
        """One warning line when the registry file and the partition's state (its log) disagree.

        The state is the truth: symbols join through the genesis and AddSymbol commands in the
        log, so a replay always rebuilds the same state, and a file edit alone changes nothing.
        """
        differences = registry_differences(
            [core_params(s) for s in self.registry.symbols_of_partition(self.partition)],
            self.processor.engine.symbols(),
        )
        if differences:
            log.warning(
                "the registry file disagrees with the log, which wins; list new symbols with AddSymbol",
                extra={"partition": self.partition, **differences},
            )

    # --- the batch loop --------------------------------------------------------------------------

    def _settle_before_stopping(self) -> None:
        try:
            if self._open.commands:
                self.settle()
                self.start_commit()
            self.settle()
            self._snapshot_before_stopping()
        except ABORTED as exc:  # nothing is lost: the next instance replays
            log.warning("the last transaction aborted while stopping", extra={"reason": str(exc)})

    def _snapshot_before_stopping(self) -> None:
        """Leave a state snapshot at the committed offset, so the next start replays nothing.

        Worth a few seconds of the stop (a million resting orders take about three); a snapshot
        that is not written in time is given up, and the next start replays from the one before.
        """
        deadline = time.monotonic() + SNAPSHOT_AT_STOP_WAIT_S
        for _ in range(2):  # the one being written, then one of the commands since, if any
            if self._snapshot is None and self.since_snapshot:
                self._start_snapshot(self.next_offset)
            if self._snapshot is None:
                return
            wait([self._snapshot.value], timeout=max(0.0, deadline - time.monotonic()))
            if not self._snapshot_finished():
                return
            self._commit_snapshot_alone()

    def apply(self, batch: list[Message], taking_since: float, taken_ns: int) -> None:
        """Apply ``batch``, taken since ``taking_since`` (monotonic) and handed over at ``taken_ns``
        (wall clock); its records join the open batch."""
        open_batch = self._open
        if not open_batch.commands:
            open_batch.started = taking_since
        tally = Tally(self.touched, self.last_ts)
        first_record = len(open_batch.records)
        self.processor.step_all(batch, open_batch.records, tally)
        applied_ns = time.time_ns()  # before the early replies leave: a reader may see one at once
        if self.early is not None:
            self._reply_early(self.early, open_batch.records, first_record)
        self._count(tally)
        self.last_ts = tally.last_ts
        open_batch.commands += len(batch)
        open_batch.end = record_offset(batch[-1]) + 1
        open_batch.times.takes.append(Take(record_offset(batch[0]), open_batch.end, taken_ns, applied_ns))
        self.since_snapshot += len(batch)

    def _reply_early(self, early: IdempotentProducer, records: list[Record], start: int) -> None:
        """Write the replies among ``records[start:]`` to `replies-early` now, outside the transaction.

        A command's outcome is fixed once it is in `orders`: the engine is a function of the log,
        so the copy the transaction commits later (or, after an abort, the one a recovered or
        newer instance commits) is byte for byte this one. Gateways take whichever copy comes
        first, by request id; a command replayed after an abort is answered early again, equally.
        """
        topic = self.topics.replies_early
        early.produce_all(
            (topic, r.value, r.key, r.partition, r.headers)
            for r in islice(records, start, None)
            if r.role == "replies"
        )
        early.poll(0)

    def _count(self, tally: Tally) -> None:
        for (kind, result), count in tally.commands.items():
            self.metrics.command(kind, result, count)
        if tally.fills:
            self.metrics.fills.inc(tally.fills)
            self.metrics.traded_lots.inc(tally.traded_lots)

    def start_commit(self, *, background: bool = False) -> None:
        """Begin a transaction with the open batch's records, the snapshots due and its input offset,
        and commit it: in the background, or before returning."""
        batch, self._open = self._open, OpenBatch()
        self.checkpoint.commit(batch, self._due_snapshots, background=background)
        if not background:
            self.settle()

    def _snapshot_finished(self) -> bool:
        """Whether a state snapshot is written and the committed offset reached it (_finished_snapshot)."""
        pending = self._snapshot
        return pending is not None and pending.value.done() and pending.orders_offset <= self.next_offset

    def _commit_snapshot_alone(self) -> None:
        """Commit a transaction of no commands at the committed offset, carrying the snapshots due."""
        # Applied commands would be dropped from the outputs while their offsets are committed later.
        assert not self._open.commands, "a snapshot commits alone only when no command is open"
        self._open = OpenBatch(end=self.next_offset, started=time.monotonic())
        self.start_commit()

    def settle(self) -> None:
        """Wait for the transaction committing in the background, if any; raises what its commit raised."""
        batch = self.checkpoint.settle()
        if batch is not None:
            self._committed(batch)

    def _committed(self, batch: OpenBatch) -> None:
        self.since_freeze += batch.commands
        if self.since_freeze >= GC_FREEZE_EVERY_COMMANDS:
            gc.freeze()
            self.since_freeze = 0
        self.next_offset = batch.end
        if batch.commands:
            self.metrics.batch_commands.observe(batch.commands)
        self.metrics.transaction_seconds.observe(time.monotonic() - batch.started)
        self.metrics.committed_offset.set(batch.end)
        self._time_transaction(batch)

    def _time_transaction(self, batch: OpenBatch) -> None:
        times = batch.times
        for phase, seconds in times.transaction_phases_s().items():
            self.metrics.transaction_phases[phase].observe(seconds)
        if times.total_s() * 1000 > self.settings.matcher_slow_transaction_ms:
            log.warning(
                "slow transaction",
                extra={
                    "partition": self.partition,
                    "commands": batch.commands,
                    "records": len(batch.records),
                    "end_offset": batch.end,
                    "ms": round(times.total_s() * 1000, 1),
                    "phases_ms": times.phases_ms(),
                },
            )
        if self.on_committed is not None:
            self.on_committed(times)

    def _due_snapshots(self, end: int) -> list[Record]:
        """The state snapshot and book snapshots this transaction should carry, if any are due."""
        records: list[Record] = []
        now = time.monotonic()
        if self.touched and now - self.last_book_snapshot_at >= self.settings.matcher_book_snapshot_every_s:
            records.extend(self.processor.book_snapshots(sorted(self.touched), self.last_ts))
            self.touched.clear()
            self.last_book_snapshot_at = now
        every_n = self.settings.matcher_snapshot_every_commands
        every_s = self.settings.matcher_snapshot_every_s
        due = self.since_snapshot >= every_n or (
            self.since_snapshot and now - self.last_snapshot_at >= every_s
        )
        records.extend(self._finished_snapshot(end))  # first: it makes room for the next one
        if due and self._snapshot is None:
            self._start_snapshot(end)
        return records

    def _start_snapshot(self, end: int) -> None:
        """Begin writing the engine's state, which covers the commands below ``end``, in a child."""
        self._snapshot = self._snapshots.start(self.processor.engine, end, self.last_ts)
        self.since_snapshot = 0
        self.last_snapshot_at = time.monotonic()

    def _finished_snapshot(self, end: int) -> list[Record]:
        """The state snapshot a child has finished writing, if this transaction may carry it.

        A transaction that commits offset ``end`` may carry a snapshot of a state at or below it
        (recovery refuses a snapshot beyond the committed offset). After an abort the snapshot
        can be ahead of the next transactions; it waits for one that reaches it.
        """
        pending = self._snapshot
        if pending is None or not pending.value.done() or pending.orders_offset > end:
            return []
        self._snapshot = None
        value = pending.value.result()
        if value is None:
            log.error("state snapshot failed in its child process; the next one is due later")
            return []
        self.metrics.snapshot_bytes.set(len(value))
        if len(value) > STATE_SNAPSHOT_MAX_BYTES:
            # Writing it would fail the transaction again after every restart. Without it recovery
            # replays further back, which is slower but correct.
            log.error("state snapshot too large; skipped", extra={"bytes": len(value)})
            return []
        headers = self.codec.trusted_writer(SNAPSHOT_SCHEMA)[1]
        return [Record("state_snapshots", self.partition, state_snapshot_key(self.partition), value, headers)]

    def _update_gauges(self) -> None:
        now = time.monotonic()
        if now - self._gauges_at < GAUGE_EVERY_S:
            return
        self._gauges_at = now
        engine = self.processor.engine
        self.metrics.resting_orders.set(engine.resting_count())
        self.metrics.snapshot_age.set(now - self.last_snapshot_at)
        high = self.consumer.end_offset(self.topics.orders, self.partition)
        if high is not None:
            self.metrics.input_lag.set(max(high - self.next_offset, 0))
        bids, asks = engine.level_counts()
        self.metrics.levels("buy", bids)
        self.metrics.levels("sell", asks)


def partition_of_pod(pod_name: str) -> int:
    """The partition a StatefulSet pod matches: its ordinal, the number its name ends with (``matcher-3``)."""
    _, dash, ordinal = pod_name.rpartition("-")
    if not dash or not ordinal.isdigit() or ordinal != str(int(ordinal)):
        raise UserError(f"pod name {pod_name!r} does not end with a StatefulSet ordinal (like matcher-3)")
    return int(ordinal)


def configure(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--partition", type=int, help="the `orders` partition to match")
    # Kubernetes: a StatefulSet's pods are NAME-0, NAME-1, ...; the ordinal is the partition.
    which.add_argument(
        "--pod-name", help="match the partition that is this StatefulSet pod's ordinal (matcher-3: 3)"
    )


def run(args: argparse.Namespace) -> int:
    partition = args.partition if args.pod_name is None else partition_of_pod(args.pod_name)
    settings = load_settings(MatcherSettings)
    configure_logging(settings.log_level, settings.log_format)
    shutdown = Shutdown().install()
    return Matcher(settings, partition, shutdown=shutdown).run()
