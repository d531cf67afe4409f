"""The gateway's side of Kafka: commands into `orders`, their replies back, the registry's changes.

A request's command is produced to its symbol's partition of `orders` (chosen from the registry,
never by the client library's hash) with an idempotent producer, so the broker's retries never
write it twice. The command names this instance (``gateway_id``) and the `replies` partition it
reads (a stable hash of the id), and the request waits on a future keyed by its request id.

One thread reads that partition of `replies` and of `replies-early`, and the whole `symbols`
topic (read_committed): a reply whose key is this instance's id resolves its request's future;
any other key belongs to another instance sharing the partition and is skipped without decoding.
A matcher writes each reply twice, early (the moment it is computed) and in its transaction;
both copies are equal, the first one answers and the other is dropped by request id. A symbols
record updates the live registry. Another thread serves the producer's delivery reports and
watches the broker: while it is unreachable the gateway refuses commands at once (503) instead of
queueing them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, Producer, TopicPartition

from runtime.health import Health
from runtime.kafka import CommittedConsumer, FatalKafkaError, client_config, librdkafka_log
from runtime.live_symbols import LiveRegistry
from runtime.topics import TopicNames
from schemas import Codec, DecodeError
from schemas.parts import PartJoiner

log = logging.getLogger("gateway.sequencer")

POLL_S = 0.05
BROKER_PROBE_EVERY_S = 0.5
BROKER_PROBE_TIMEOUT_S = 1.0
# Probes in a row that must fail before the broker counts as unreachable: on a busy machine one
# metadata answer can take longer than the timeout, and refusing orders for it would be an
# outage of our own making. A broker that is really gone closes its connections, which the
# client reports at once (_on_client_error).
BROKER_PROBE_FAILURES = 2
STARTUP_TIMEOUT_S = 30.0
# A delivery report comes within the producer's message timeout; past this margin something is wrong.
DELIVERY_MARGIN_S = 5.0
# Request ids whose reply was seen, so the second copy of each is known as one (a few MB at most).
ANSWERED_KEPT = 100_000


class Unavailable(Exception):
    """The command was not written to `orders` (the broker is unreachable, or refused it)."""


class OutcomeUnknown(Exception):
    """No delivery report came: the command may or may not have been written."""


def default_instance_id() -> str:
    """A gateway instance's id when none is set: host, process and a random part (unique per start)."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())[:32]
    return f"gw-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def reply_partition_of(gateway_id: str, partitions: int) -> int:
    """The `replies` partition an instance reads: a stable hash of its id, so no coordination is needed."""
    return zlib.crc32(gateway_id.encode()) % partitions


class Sequencer:
    """Produces commands, waits for their replies, and keeps the live registry current."""

    def __init__(
        self,
        bootstrap: str,
        topics: TopicNames,
        codec: Codec,
        registry: LiveRegistry,
        health: Health,
        *,
        gateway_id: str,
        delivery_timeout_s: float,
        on_late_reply: Callable[[], None] = lambda: None,
        on_delivered: Callable[[float], None] = lambda _seconds: None,
    ) -> None:
        self.topics = topics
        self.codec = codec
        self.registry = registry
        self.health = health
        self.gateway_id = gateway_id
        self._key = gateway_id.encode()
        self.delivery_timeout_s = delivery_timeout_s
        self.on_late_reply = on_late_reply
        self.on_delivered = on_delivered
        self.broker_up = False
        self.symbols_loaded = False  # the `symbols` topic was read to its end once
        self.reply_partition = -1
        self._symbol_partitions: set[int] = set()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._answered: OrderedDict[str, None] = OrderedDict()
        # A reply too large for one record comes in parts (schemas.parts); only the reader thread
        # touches it, so it needs no lock.
        self._reply_parts = PartJoiner("Reply")
        self._reply_topics = {topics.replies, topics.replies_early}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = threading.Event()
        self._failed_probes = 0
        self._threads: list[threading.Thread] = []
        producer_settings = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,  # a request waits on this record: send it now
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "error_cb": self._on_client_error,
        }
        self.producer = Producer(client_config(bootstrap, f"gateway-{gateway_id}", producer_settings))
        self.consumer = CommittedConsumer(
            bootstrap,
            group_id=f"gateway-{gateway_id}",  # never committed: the instance reads by assignment
            client_id=f"gateway-{gateway_id}",
            # A fetch returns as soon as a reply is committed (the broker wakes it when the commit
            # markers land), so a long wait adds no latency; it only spares the broker 20x the
            # empty fetches of librdkafka's 5 ms (measured: the same 22 ms order round trip).
            config={"fetch.wait.max.ms": 100, "logger": librdkafka_log},
        )

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Find this instance's reply partition, assign it and `symbols`, and start the threads."""
        self._loop = loop
        try:
            replies = self.consumer.partitions_of(self.topics.replies, timeout=STARTUP_TIMEOUT_S)
            symbols = self.consumer.partitions_of(self.topics.symbols, timeout=STARTUP_TIMEOUT_S)
        except (KafkaException, FatalKafkaError) as exc:
            raise Unavailable(
                f"the cluster's topics cannot be read (run `exchange topics create`): {exc}"
            ) from None
        self.reply_partition = reply_partition_of(self.gateway_id, len(replies))
        # Replies to this instance's commands come after them, so reading starts at today's end.
        starts = [
            TopicPartition(topic, self.reply_partition, self._reply_partition_end(topic))
            for topic in self._reply_topics
        ]
        self._symbol_partitions = set(symbols)
        self.consumer.assign(
            starts + [TopicPartition(self.topics.symbols, p, OFFSET_BEGINNING) for p in symbols]
        )
        self.broker_up = True
        self._running.set()
        for target, name in ((self._read, "replies"), (self._serve_producer, "producer")):
            thread = threading.Thread(target=target, name=f"gateway-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _reply_partition_end(self, topic: str) -> int:
        """Where this instance's replies in ``topic`` start; retried while a new topic's leader settles."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                return self.consumer.high_watermark(topic, self.reply_partition, 5.0)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise Unavailable(f"{topic} cannot be read: {exc}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Deliver what is queued, stop the threads and close the clients."""
        self._running.clear()
        for thread in self._threads:
            thread.join(timeout=5)
        self.producer.flush(self.delivery_timeout_s)
        self.consumer.close()

    # --- commands --------------------------------------------------------------------------------

    async def submit(
        self, schema: str, record: dict[str, Any], partition: int, key: str, deadline: float
    ) -> dict[str, Any] | None:
        """Write one command and wait for its reply until ``deadline`` (monotonic); None if none came.

        Raises Unavailable when the command was not written, OutcomeUnknown when that is not known.
        Once it returns (a reply or None) the command is in the log and will be executed once.
        """
        if not self.broker_up:
            raise Unavailable("the Kafka cluster is unreachable")
        loop = asyncio.get_running_loop()
        request_id = record["origin"]["request_id"]
        value, headers = self.codec.encode(schema, record)
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        delivered: asyncio.Future[KafkaError | None] = loop.create_future()
        self._waiting[request_id] = reply

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(_set_once, delivered, error)

        try:
            produced_at = time.monotonic()
            self._produce(value, key, partition, headers, on_delivery)
            try:
                error = await asyncio.wait_for(delivered, self.delivery_timeout_s + DELIVERY_MARGIN_S)
            except TimeoutError:
                raise OutcomeUnknown("the broker did not acknowledge the command in time") from None
            if error is not None and error.code() == KafkaError._MSG_TIMED_OUT:
                # It may have reached the broker before the connection went: written or not is unknown.
                raise OutcomeUnknown(f"the broker did not acknowledge the command: {error.str()}")
            if error is not None:
                raise Unavailable(f"the command was not written: {error.str()}")
            self.on_delivered(time.monotonic() - produced_at)
            try:
                return await asyncio.wait_for(reply, max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                return None
        finally:
            self._waiting.pop(request_id, None)

    def _produce(
        self, value: bytes, key: str, partition: int, headers: Any, on_delivery: Callable[..., None]
    ) -> None:
        try:
            self.producer.produce(
                self.topics.orders, value, key.encode(), partition, headers=headers, on_delivery=on_delivery
            )
        except BufferError:
            raise Unavailable("too many commands are waiting for the broker") from None
        except KafkaException as exc:
            raise Unavailable(f"the command was not written: {exc}") from None

    # --- the threads -----------------------------------------------------------------------------

    def _read(self) -> None:
        """Replies for this instance, and registry changes, until stopped."""
        symbols_topic, reply_topics = self.topics.symbols, self._reply_topics
        while self._running.is_set():
            try:
                message = self.consumer.poll(POLL_S)
            except Exception:  # a fatal client error: the gateway cannot hear replies any more
                log.exception("reply reader failed")
                self.health.dead("the reply reader failed")
                return
            if message is not None:
                if message.topic() in reply_topics:
                    self._on_reply(message)
                elif message.topic() == symbols_topic:
                    self._on_symbol_update(message)
            if not self.symbols_loaded and all(
                self.consumer.at_end(symbols_topic, p) for p in self._symbol_partitions
            ):
                self.symbols_loaded = True
                self._update_readiness()

    def _on_reply(self, message: Message) -> None:
        if message.key() != self._key:
            return  # another instance's reply in the shared partition
        try:
            _, reply = self.codec.decode(message.value(), message.headers())
        except DecodeError as exc:
            log.error("undecodable reply", extra={"reason": str(exc)})
            return
        request_id = reply["request_id"]
        if request_id in self._answered:
            return  # the other copy (early or committed) of a reply already taken
        future = self._waiting.get(request_id)
        if future is None:
            self._reply_parts.forget(request_id)
            self._answer_taken(request_id)
            self.on_late_reply()  # its request already answered 202 (or this instance restarted)
            return
        whole = self._reply_parts.add(request_id, reply)
        if whole is None:
            return  # more parts to come
        self._answer_taken(request_id)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_set_once, future, whole)

    def _answer_taken(self, request_id: str) -> None:
        """Remember that the request's reply was taken, so its other copy is ignored."""
        self._answered[request_id] = None
        if len(self._answered) > ANSWERED_KEPT:
            self._answered.popitem(last=False)

    def _on_symbol_update(self, message: Message) -> None:
        try:
            _, update = self.codec.decode(message.value(), message.headers())
        except DecodeError as exc:
            log.error("undecodable symbol update", extra={"reason": str(exc)})
            return
        symbol = self.registry.apply(update)
        if symbol is not None:
            log.info("symbol", extra={"symbol": symbol.name, "status": symbol.status.value})

    def _serve_producer(self) -> None:
        """Serve delivery reports, and probe the broker while it is (or may be) unreachable."""
        probed_at = 0.0
        while self._running.is_set():
            self.producer.poll(POLL_S)
            now = time.monotonic()
            if now - probed_at >= BROKER_PROBE_EVERY_S:
                probed_at = now
                self._probe_broker()

    def _probe_broker(self) -> None:
        try:
            self.producer.list_topics(self.topics.orders, timeout=BROKER_PROBE_TIMEOUT_S)
            self._failed_probes = 0
        except KafkaException:
            self._failed_probes += 1
        up = broker_reachable(was_up=self.broker_up, failed_probes=self._failed_probes)
        if up != self.broker_up:
            log.warning("kafka reachable" if up else "kafka unreachable")
        self.broker_up = up
        self._update_readiness()

    def _on_client_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.broker_up = False  # at once: requests are refused from now on, not queued
            self._update_readiness()
        level = logging.ERROR if error.fatal() else logging.WARNING
        log.log(level, "kafka client error", extra={"code": error.name(), "reason": error.str()})

    def _update_readiness(self) -> None:
        if not self.broker_up:
            self.health.not_ready("kafka unreachable")
        elif not self.symbols_loaded:
            self.health.not_ready("reading the symbol registry")
        else:
            self.health.ready()


def broker_reachable(*, was_up: bool, failed_probes: int) -> bool:
    """Whether the broker counts as reachable after a probe, ``failed_probes`` being the failures in a
    row so far: down after BROKER_PROBE_FAILURES of them, up again at the first answer."""
    return failed_probes == 0 or (was_up and failed_probes < BROKER_PROBE_FAILURES)


def _set_once(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)
