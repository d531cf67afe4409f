"""The history writer: every partition of `executions` into the store, exactly once.

It reads by assignment, not by a consumer group: where each partition starts is the position the
database holds, written in the transaction of the rows (:mod:`history.store`), so a restart
(or a kill -9) resumes exactly after the last batch the database committed. Records are read
``read_committed``: an aborted matcher transaction never reaches the store.

A database that fails (PostgreSQL stopped, a disk full) makes the service not ready; the writer
waits, then re-reads the positions and rewinds to them, so the batch that failed is read again.
The writer also follows the `symbols` topic into the live registry the API converts prices with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from history.metrics import HistoryMetrics
from history.settings import HistorySettings
from history.store import Batch, PositionMoved, Store
from runtime.health import Health
from runtime.kafka import CommittedConsumer, bootstrap_servers
from runtime.live_symbols import LiveRegistry
from runtime.shutdown import Shutdown
from runtime.topics import TopicNames
from schemas import CodecError, default_codec

log = logging.getLogger("history.writer")

# How often the lag gauges are brought up to date (from cached watermarks) and an idle writer pings.
LAG_EVERY_S = 1.0
CONSUMER_CONFIG = {"fetch.wait.max.ms": 50, "enable.partition.eof": True}
# What an `executions` record that cannot be read adds: no rows, only its offset (and no time).
UNDECODABLE: Final[dict[str, Any]] = {"symbol": "", "ts_ns": None, "events": []}


class HistoryWriter:
    """The loop: take a batch of records, write it in one transaction, repeat until shut down."""

    def __init__(
        self,
        settings: HistorySettings,
        *,
        store: Store,
        metrics: HistoryMetrics,
        health: Health,
        registry: LiveRegistry,
        shutdown: Shutdown,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.health = health
        self.registry = registry
        self.shutdown = shutdown
        self.topics = TopicNames.with_prefix(settings.topic_prefix)
        self.codec = default_codec()
        self.consumer = CommittedConsumer(
            bootstrap_servers(settings),
            group_id=f"{settings.topic_prefix}history",  # never committed to: the database holds offsets
            client_id="history-writer",
            config=CONSUMER_CONFIG,
        )
        self.partitions: list[int] = []
        self.next_offsets: dict[int, int] = {}
        self.last_ts_ns: dict[int, int | None] = {}
        self._lag_at = 0.0

    def run(self) -> None:
        """Write until shut down; database failures are waited out, Kafka's fatal errors raise."""
        try:
            self._start()
            while not self.shutdown.requested:
                try:
                    self._step()
                except (SQLAlchemyError, PositionMoved) as exc:
                    self._recover(exc)
        finally:
            self.consumer.close()

    def _start(self) -> None:
        executions = self.topics.executions
        self.partitions = self.consumer.partitions_of(executions)
        while not self.shutdown.requested:
            try:
                self.store.migrate()
                self.store.add_partitions(executions, self.partitions)
                self._rewind()
                return
            except SQLAlchemyError as exc:
                self._wait_for_database(exc)

    def _rewind(self) -> None:
        """Read on from the positions the database holds (and `symbols` from its beginning)."""
        stored = {p.partition: p for p in self.store.positions(self.topics.executions)}
        self.next_offsets = {p: stored[p].next_offset for p in self.partitions}
        self.last_ts_ns = {p: stored[p].last_ts_ns for p in self.partitions}
        symbols = self.consumer.partitions_of(self.topics.symbols)
        self.consumer.assign(
            [TopicPartition(self.topics.executions, p, self.next_offsets[p]) for p in self.partitions]
            + [TopicPartition(self.topics.symbols, p, OFFSET_BEGINNING) for p in symbols]
        )
        self.health.ready()
        log.info("reading executions", extra={"positions": self.next_offsets})

    def _step(self) -> None:
        settings = self.settings
        messages = self.consumer.consume(
            settings.history_batch_max_records, settings.history_batch_max_ms / 1000
        )
        batch = self._batch_of(messages)
        if len(batch):
            started = time.monotonic()
            written = self.store.apply(self.topics.executions, batch)
            self.metrics.batch_seconds.observe(time.monotonic() - started)
            self._count(batch, written.orders_inserted, written.orders_updated, written.fills_inserted)
        self._every_second(idle=not len(batch))

    def _every_second(self, *, idle: bool) -> None:
        """Bring the lag gauges up to date; while idle, ask the database whether it is still there."""
        now = time.monotonic()
        if now - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = now
        if idle:
            # Without records to write, a database that went away would go unnoticed until the next one.
            self.store.ping()
        self._update_lag()

    def _batch_of(self, messages: Sequence[Message]) -> Batch:
        """The batch of the `executions` records among ``messages``; symbol updates go to the registry."""
        batch = Batch()
        for message in messages:
            topic, partition, offset = message.topic(), message.partition() or 0, message.offset() or 0
            try:
                schema, record = self.codec.decode(message.value(), message.headers())
            except CodecError as exc:
                # Its offset still moves: a record no reader here can use must not stall the partition.
                self.metrics.undecodable.inc()
                log.error("undecodable record", extra={"topic": topic, "offset": offset, "reason": str(exc)})
                schema, record = "", UNDECODABLE
            if topic == self.topics.symbols:
                if schema == "SymbolUpdate":
                    self.registry.apply(record)
            else:
                batch.add(partition, offset, record if schema == "ExecutionReport" else UNDECODABLE)
        return batch

    def _count(self, batch: Batch, inserted: int, updated: int, filled: int) -> None:
        metrics = self.metrics
        metrics.records.inc(len(batch))
        metrics.rows.labels("orders", "inserted").inc(inserted)
        metrics.rows.labels("orders", "updated").inc(updated)
        metrics.rows.labels("fills", "inserted").inc(filled)
        for partition, (_, after, last_ts) in batch.moves().items():
            self.next_offsets[partition] = after
            self.last_ts_ns[partition] = last_ts or self.last_ts_ns.get(partition)

    def _update_lag(self) -> None:
        for partition in self.partitions:
            end = self.consumer.end_offset(self.topics.executions, partition)
            behind = max(0, (end or 0) - self.next_offsets[partition])
            last = self.last_ts_ns[partition]
            age = max(0.0, (time.time_ns() - last) / 1e9) if behind and last is not None else 0.0
            self.metrics.lag_records.labels(str(partition)).set(behind)
            self.metrics.lag_seconds.labels(str(partition)).set(age)

    def _recover(self, exc: Exception) -> None:
        """After a failed batch: wait for the database, then read again from what it holds."""
        self.metrics.database_errors.inc()
        while not self.shutdown.requested:
            self._wait_for_database(exc)
            try:
                self._rewind()
                return
            except SQLAlchemyError as again:
                exc = again

    def _wait_for_database(self, exc: Exception) -> None:
        reason = _one_line(exc)
        self.health.not_ready(f"database: {reason}")
        log.warning("database unavailable; retrying", extra={"reason": reason})
        self.shutdown.wait(self.settings.history_retry_s)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return " ".join(str(exc).split())[:300]
