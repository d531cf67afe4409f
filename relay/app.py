"""One relay: the feed thread, the market it builds, the hub that fans it out, the WebSocket server.

The event loop owns the market and the hub; the feed thread only reads and decodes. The loop
applies each batch of records in order, asks the feed to step back when a book shows a gap, and
is ready (``/readyz``) once the feed has read every `book` partition to where it ended at boot
and no book has a gap.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from relay import server
from relay.access import Access
from relay.feed import CaughtUp, Feed, FeedItem, FeedRecord, StepBackExhausted
from relay.hub import Hub
from relay.market import Market
from relay.metrics import RelayMetrics
from relay.protocol import CloseCode
from relay.settings import RelaySettings
from runtime.health import Health
from runtime.kafka import bootstrap_servers
from runtime.keys import load_keys
from runtime.live_symbols import LiveRegistry
from runtime.symbols import load_registry
from runtime.topics import TopicNames
from schemas import default_codec
from schemas.parts import PartJoiner

log = logging.getLogger("relay")

# Batches of records between the feed thread and the loop: enough to keep both busy.
HANDOVER_BATCHES = 16
HANDOVER_WAIT_S = 0.5
FEED_STOP_S = 10.0


class StepBacks:
    """When a gap in a `book` partition calls for a step back, and when it is an echo of one asked for.

    Records read before the step was taken (an older generation) show the same gap again; only a
    gap in a record read after the latest step asks for another.
    """

    def __init__(self) -> None:
        self._awaited: dict[int, int] = {}  # partition -> the generation the latest step back starts

    def needed(self, partition: int, generation: int) -> bool:
        if generation < self._awaited.get(partition, 0):
            return False
        self._awaited[partition] = generation + 1
        return True


class Relay:
    """Everything one relay process runs; :meth:`serve` until its stop event is set."""

    def __init__(self, settings: RelaySettings, metrics_registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = LiveRegistry(load_registry(settings.symbols_file))
        self.market = Market(settings.relay_change_log)
        self.metrics = RelayMetrics(metrics_registry or CollectorRegistry())
        self.health = Health()
        keys = load_keys(settings.relay_keys_file, settings.relay_keys, "EXCHANGE_RELAY_KEYS")
        self.hub = Hub(
            self.market,
            self.registry,
            Access(keys, settings.relay_recv_window_s),
            self.metrics,
            max_subscriptions=settings.relay_max_subscriptions,
            max_resyncs=settings.relay_max_resyncs,
            resync_window_s=settings.relay_resync_window_s,
        )
        self.feed = Feed(
            bootstrap_servers(settings),
            TopicNames.with_prefix(settings.topic_prefix),
            default_codec(),
            self.registry,
            tape_s=settings.relay_tape_hours * 3600,
            margin_s=settings.relay_boot_margin_s,
            on_record=lambda role: self.metrics.records.labels(role).inc(),
            on_step_back=self.metrics.step_backs.inc,
        )
        self.caught_up = False
        self.port = 0
        self._snapshot_parts = PartJoiner("BookSnapshot")
        self._step_backs = StepBacks()

    async def serve(
        self, stop: asyncio.Event, on_listening: Callable[[int], None] = lambda _port: None
    ) -> None:
        """Read, fan out and serve until ``stop`` is set, then close every client (1001) and the feed."""
        loop = asyncio.get_running_loop()
        batches: asyncio.Queue[list[FeedItem]] = asyncio.Queue(HANDOVER_BATCHES)
        feed_stop = threading.Event()

        def hand_over(items: list[FeedItem]) -> bool:
            put = asyncio.run_coroutine_threadsafe(batches.put(items), loop)
            while not feed_stop.is_set():
                try:
                    put.result(HANDOVER_WAIT_S)
                    return True
                except TimeoutError:
                    continue
            put.cancel()
            return False

        feed = threading.Thread(
            target=self._run_feed, args=(feed_stop, hand_over), name="relay-feed", daemon=True
        )
        feed.start()
        ws = await server.start(self)
        self.port = server.port_of(ws)
        on_listening(self.port)
        tasks = [
            asyncio.create_task(self._apply_batches(batches)),
            asyncio.create_task(self._maintain()),
        ]
        try:
            await stop.wait()
        finally:
            self.health.not_ready("stopping")
            await server.stop(ws)
            for task in tasks:
                task.cancel()
            feed_stop.set()
            await asyncio.to_thread(feed.join, FEED_STOP_S)

    def _run_feed(self, stop: threading.Event, hand_over: Callable[[list[FeedItem]], bool]) -> None:
        try:
            self.feed.run(stop, hand_over)
        except Exception:  # the relay cannot follow the market any more: not alive, so it is restarted
            log.exception("feed failed")
            self.health.dead("the Kafka feed failed")

    async def _apply_batches(self, batches: asyncio.Queue[list[FeedItem]]) -> None:
        while True:
            items = list(await batches.get())
            # The batches that came while the last one was sent go together: one flush, so a relay
            # that falls behind writes fewer and larger runs instead of falling further behind.
            while not batches.empty():
                items.extend(batches.get_nowait())
            self.apply(items)

    def apply(self, items: list[FeedItem]) -> None:
        """Apply one batch of the feed to the market and send what changed."""
        try:
            self._apply_items(items)
        finally:
            self.hub.flush()  # what the batch held for clients with nothing queued, one write each

    def _apply_items(self, items: list[FeedItem]) -> None:
        for item in items:
            if isinstance(item, FeedRecord):
                self._apply_record(item)
            elif isinstance(item, CaughtUp):
                self.caught_up = True
                self.market.follow()
                log.info("caught up", extra={"symbols": len(self.market.symbols)})
            elif isinstance(item, StepBackExhausted):
                log.warning("books wait for a snapshot", extra={"symbols": self.market.gaps()})
        gaps = self.market.gaps()
        self.metrics.gaps.set(len(gaps))
        # Ready once caught up with no gap; a gap found later (a live one is a bug upstream, and heals
        # with the next snapshot) is counted in the metric but does not take the relay out of service.
        if self.caught_up and not gaps:
            self.health.ready()
        elif not self.caught_up:
            self.health.not_ready("reading the book topics")
        elif not self.health.readiness()[0]:
            self.health.not_ready(f"books with a gap: {', '.join(gaps[:5])}")

    def _apply_record(self, item: FeedRecord) -> None:
        record = item.record
        if item.role == "book":
            applied = self.market.apply(record)
            if applied.gap and self._step_backs.needed(item.partition, item.generation):
                self.feed.step_back(item.partition)
            self.hub.on_applied(applied)
        elif item.role == "book_snapshots":
            whole = self._snapshot_parts.add((record["symbol"], record["seq"]), record)
            reset = None if whole is None else self.market.take_snapshot(whole)
            if reset is not None:
                self.hub.on_applied(reset)
        elif item.role == "executions":
            self.hub.on_executions(record)

    async def _maintain(self) -> None:
        """Heartbeats, and closing clients whose writer is stuck in one send."""
        every = min(1.0, self.settings.relay_heartbeat_s)
        last_heartbeat = time.monotonic()
        while True:
            await asyncio.sleep(every)
            for client in self.hub.stalled(self.settings.relay_send_timeout_s):
                self.hub.drop(client, CloseCode.SLOW_CONSUMER, "SLOW_CONSUMER: a send did not finish")
                client.abort()
            if time.monotonic() - last_heartbeat >= self.settings.relay_heartbeat_s:
                last_heartbeat = time.monotonic()
                self.hub.heartbeat()
