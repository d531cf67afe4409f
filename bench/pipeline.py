"""`exchange bench pipeline --flow FLOW.csv`: the matcher on a real broker against Kafka's own limit.

One run, one partition, one JSON line:

1. **Preload** (untimed): every flow row becomes the `orders` record a gateway would produce
   (``bench.wireflow``), all on partition 0 of topics under a fresh ``bench.<id>.`` prefix.
2. **Pass-through** (the baseline): a loop that reads `orders` in batches of the matcher's size,
   produces each command's value once to a topic of its own and commits every batch with its
   consumed offsets in one transaction, with the matcher's client settings. It is what the
   matcher's transactions cost without matching, decoding or encoding: Kafka's limit here.
3. **Matcher**: the real :class:`matcher.service.Matcher` in a thread of this process on the same
   preloaded `orders`. Both rates are every command over the time from the moment the loop could
   start consuming (the matcher: ready) until the last one is committed. The matcher's readiness
   and committed offset are sampled every few milliseconds; the pass-through times itself.
4. **Latency** (a second, paced phase, matcher still running): a few thousand more commands at a
   modest rate, each stamped with the wall clock (``origin.ts_ns``) as it is produced; a
   ``read_committed`` reader of `replies-early` and `replies` takes the clock again when each
   copy of the reply arrives. ``e2e_*`` is the first copy (what a gateway answers with),
   ``committed_e2e_*`` the committed one, and ``phases_ms`` splits each command's way at the
   moments the matcher recorded (:mod:`matcher.timing`). The same commands at the same rate
   also go through the pass-through loop before the matcher starts (``passthrough_e2e_*``):
   Kafka's own latency here, which the matcher's is judged against. The slowest transactions
   of the paced phase are logged with their phases.

Progress is logged on stderr; stdout has the JSON line only.

The broker is ``EXCHANGE_KAFKA_BOOTSTRAP``'s, else a local one started for the run (and
stopped after it). Topics and consumer groups the run created are deleted at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, cast

from confluent_kafka import OFFSET_END, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from bench.wireflow import FlowRow, WireCommand, flow_registry_yaml, read_flow, wire_command
from matcher.processor import record_offset
from matcher.service import CONSUMER_CONFIG, PRODUCER_CONFIG, Matcher, MatcherSettings, group_id, next_batch
from matcher.timing import TimingLog, TransactionTimes
from runtime import native
from runtime.broker import free_port, kafka_cluster
from runtime.errors import UserError
from runtime.kafka import (
    CommittedConsumer,
    Headers,
    IdempotentProducer,
    TransactionalProducer,
    admin_client,
)
from runtime.logs import configure_logging
from runtime.progress import Progress
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.topics import TopicNames, TopicSpec, ensure_topics, topic_specs
from schemas import default_codec

log = logging.getLogger("bench.pipeline")

PARTITION = 0
# How often the matcher's committed offset is looked at: the timing's resolution, and a
# negligible share of the interpreter the matcher thread runs in.
SAMPLE_S = 0.005
# Guards against a hang only (a dead broker): a 200k flow takes seconds.
GUARD_S = 600.0
POLL_S = 0.1
# A gateway's producer for the preload (untimed: batched) and for the paced phase (sent at once).
PRELOAD_PRODUCER_CONFIG = {"linger.ms": 20, "compression.type": "lz4"}
PACED_PRODUCER_CONFIG = {"linger.ms": 0}
RATE_NOTE = (
    "rates: commands / seconds from ready to consume (pass-through: consumer assigned) to the last "
    "commit; matcher in-process (a thread), its readiness and committed offset sampled every "
    f"{SAMPLE_S * 1000:.0f} ms; pass-through: consume -> produce each value once -> send offsets -> "
    "commit, per batch of batch_max_commands, clients configured as the matcher's; passthrough_per_s "
    "is the best of a run before and a run after the matcher"
)
LATENCY_NOTE = (
    "e2e_*_ms: wall clock from producing a command to `orders` (origin.ts_ns, set at produce time) "
    "until its reply is read by a read_committed consumer of `replies`, i.e. gateway produce -> matcher "
    "fetch, match, encode -> transaction commit -> reply visible; paced phase after the timed run, "
    "matcher in this process; the producer and the reader share its interpreter (a few % of one core)"
)


# --- a broker and topics of our own ---------------------------------------------------------------


@dataclass
class BenchCluster:
    """The cluster's topics under a prefix no one else uses, and the symbol registry for them."""

    bootstrap: str
    prefix: str
    topics: TopicNames
    registry_file: Path
    admin: AdminClient
    created: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def process_env(self, **extra: str) -> dict[str, str]:
        """The environment of an `exchange` process on this cluster's broker, topics and registry."""
        return {
            **os.environ,
            "EXCHANGE_KAFKA_BOOTSTRAP": self.bootstrap,
            "EXCHANGE_TOPIC_PREFIX": self.prefix,
            "EXCHANGE_SYMBOLS_FILE": str(self.registry_file),
            **extra,
        }

    def matcher_settings(self, settings: MatcherSettings) -> MatcherSettings:
        """``settings`` for a matcher in this process on this cluster (no ops port of its own)."""
        return settings.model_copy(
            update={
                "kafka_bootstrap": self.bootstrap,
                "topic_prefix": self.prefix,
                "symbols_file": self.registry_file,
                "matcher_ops_port": 0,
            }
        )

    def add_topic(self, name: str, partitions: int = 1) -> str:
        """A further topic under the prefix (deleted with the others); returns its full name."""
        spec = TopicSpec(self.prefix + name, partitions)
        ensure_topics(self.admin, [spec])
        self.created.append(spec.name)
        return spec.name

    def group(self, name: str) -> str:
        """A consumer group id under the prefix, deleted at the end (for groups that commit offsets)."""
        group = self.prefix + name
        self.groups.append(group)
        return group

    def remove(self) -> None:
        """Delete the consumer groups and topics this run created, and nothing else."""
        futures = {}
        if self.groups:
            futures.update(self.admin.delete_consumer_groups(self.groups, request_timeout=30))
        if self.created:
            futures.update(self.admin.delete_topics(self.created, operation_timeout=30))
        for name, future in futures.items():
            try:
                future.result(30)
            except KafkaException as exc:  # a cleanup problem must not hide the result
                log.warning("could not delete", extra={"name": name, "error": str(exc)})


@contextmanager
def bench_cluster(settings: Settings, symbols: list[str], workdir: Path) -> Iterator[BenchCluster]:
    """One-partition topics for ``symbols`` under ``bench.<id>.``; a local broker in ``workdir`` if needed.

    The broker is ``EXCHANGE_KAFKA_BOOTSTRAP``'s when set, else one started on a free port with
    its data in ``workdir``, so it never collides with a broker someone runs by hand.
    """
    local = settings.model_copy(update={"kafka_port": free_port(), "data_dir": workdir})
    with kafka_cluster(local) as bootstrap:
        prefix = f"bench.{uuid.uuid4().hex[:12]}."
        registry_file = workdir / "symbols.yaml"
        registry_file.write_text(flow_registry_yaml(symbols, partition_count=1))
        topics = TopicNames.with_prefix(prefix)
        cluster = BenchCluster(bootstrap, prefix, topics, registry_file, admin_client(bootstrap))
        try:
            specs = topic_specs(topics, partitions=1, replies_partitions=1)
            cluster.created += [spec.name for spec in specs]
            ensure_topics(cluster.admin, specs)
            yield cluster
        finally:
            cluster.remove()


def produce_commands(bootstrap: str, topic: str, commands: Iterable[WireCommand]) -> int:
    """Produce commands to partition 0 of ``topic`` as a gateway does; returns how many once delivered."""
    codec = default_codec()
    producer = IdempotentProducer(bootstrap, client_id="bench-gateway", config=PRELOAD_PRODUCER_CONFIG)
    count = 0
    for command in commands:
        value, headers = codec.encode(command.schema, command.record, checked=False)
        producer.produce(topic, value, key=command.symbol.encode(), partition=PARTITION, headers=headers)
        count += 1
    producer.close(GUARD_S)
    return count


# --- timing ---------------------------------------------------------------------------------------


class Throughput(NamedTuple):
    """Commands, the seconds from starting to consume them to committing the last, and transactions."""

    commands: int
    seconds: float
    transactions: int
    background_commits: int = 0  # of them, committed while the next batch was being applied

    @property
    def per_s(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0


def passthrough(
    cluster: BenchCluster,
    end: int,
    settings: MatcherSettings,
    name: str,
    output: str | None = None,
    *,
    source: str | None = None,
) -> Throughput:
    """Copy ``source`` (default `orders`) up to offset ``end`` to ``output`` (default: a new topic
    ``name``), a transaction a batch.

    ``name`` also names the consumer group and the transactional id, so every run starts at offset 0.
    """
    output = output or cluster.add_topic(name)
    source = source or cluster.topics.orders
    consumer = CommittedConsumer(
        cluster.bootstrap,
        group_id=cluster.group(name),
        client_id=f"bench-{name}",
        config=CONSUMER_CONFIG,
    )
    producer = TransactionalProducer(
        cluster.bootstrap, transactional_id=cluster.prefix + name, config=PRODUCER_CONFIG
    )
    try:
        producer.init()
        consumer.assign([TopicPartition(source, PARTITION, 0)])
        started = time.perf_counter()
        done, transactions = 0, 0
        deadline = time.monotonic() + GUARD_S
        while done < end:
            batch = next_batch(
                consumer,
                source,
                PARTITION,
                settings.matcher_batch_max_commands,
                settings.matcher_batch_max_ms,
            )
            if not batch:
                if time.monotonic() > deadline:
                    raise UserError(f"pass-through stalled at offset {done} of {end}")
                continue
            producer.begin()
            for message in batch:
                # The preload wrote these headers: (name, bytes) pairs, as the codec makes them.
                headers = cast(Headers, message.headers())
                producer.produce(
                    output, message.value(), key=message.key(), partition=PARTITION, headers=headers
                )
            producer.commit(consumer)
            transactions += 1
            done = record_offset(batch[-1]) + 1
        return Throughput(end, time.perf_counter() - started, transactions)
    finally:
        consumer.close()


def warm_up(cluster: BenchCluster, end: int, settings: MatcherSettings, seconds: float) -> None:
    """Untimed pass-through rounds for ``seconds``.

    A freshly started broker's JVM compiles its hot paths for tens of seconds of load, and until
    then it commits transactions several times slower than it will (20k/s first, 90k/s later here).
    """
    if seconds <= 0:
        return
    output = cluster.add_topic("warm-up")
    deadline, rounds = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        rounds += 1
        done = passthrough(cluster, end, settings, f"warm-up-{rounds}", output)
        log.info("warm-up round", extra={"round": rounds, "per_s": round(done.per_s)})


class InProcessMatcher:
    """The real matcher of partition 0, run in a thread of this process, optionally under cProfile."""

    def __init__(self, settings: MatcherSettings, profile_to: Path | None = None) -> None:
        self.registry = CollectorRegistry()
        self.shutdown = Shutdown()
        self.matcher = Matcher(settings, PARTITION, shutdown=self.shutdown, metrics_registry=self.registry)
        self.profile_to = profile_to
        self.timings = TimingLog()
        self.matcher.on_committed = self.timings.add
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, name="matcher-0", daemon=True)

    def _run(self) -> None:
        if self.profile_to is None:
            self.exit_code = self.matcher.run()
            return
        profile = cProfile.Profile()
        try:
            self.exit_code = profile.runcall(self.matcher.run)
        finally:
            profile.dump_stats(self.profile_to)

    def start(self) -> InProcessMatcher:
        self._thread.start()
        return self

    def committed(self) -> int:
        """The matcher's committed `orders` offset, set right after each commit.

        Read from the matcher, not from its metrics: collecting the registry every few milliseconds
        would hold the interpreter for most of a core and slow the matcher down.
        """
        return self.matcher.next_offset

    def wait_until(
        self, condition: str, check: Callable[[], bool], progress: Progress | None = None
    ) -> float:
        """Sample until ``check()`` holds; the time it was first seen to hold."""
        deadline = time.monotonic() + GUARD_S
        while not check():
            if progress is not None:
                progress.reached(self.committed())
            if self.exit_code is not None or not self._thread.is_alive():
                raise UserError(f"the matcher stopped (exit code {self.exit_code}) before {condition}")
            if time.monotonic() > deadline:
                raise UserError(f"the matcher did not reach {condition} within {GUARD_S:.0f} s")
            time.sleep(SAMPLE_S)
        return time.perf_counter()

    def throughput(self, end: int) -> Throughput:
        """Wait for recovery, then time the matcher from ready until it has committed offset ``end``."""
        started = self.wait_until("ready", lambda: self.matcher.health.readiness()[0])
        finished = self.wait_until(
            f"offset {end}", lambda: self.committed() >= end, Progress("bench pipeline: matcher", end)
        )
        return Throughput(end, finished - started, self.matcher.transactions, self.matcher.background_commits)

    def stop(self) -> int | None:
        self.shutdown.request()
        self._thread.join(GUARD_S)
        return self.exit_code


# --- latency --------------------------------------------------------------------------------------


def paced_commands(rows: list[FlowRow], count: int) -> list[WireCommand]:
    """``count`` more commands: the flow again from its start, with order and request ids of their own."""
    id_shift = max(row.order_id for row in rows) + 1
    seq_shift = max(row.seq for row in rows) + 1
    return [
        wire_command(row._replace(seq=row.seq + seq_shift * cycle, order_id=row.order_id + id_shift * cycle))
        for row, cycle in ((rows[n % len(rows)], 1 + n // len(rows)) for n in range(count))
    ]


class Delivery(NamedTuple):
    """One paced command: its `orders` offset (where the output names it), sent and seen (wall ns)."""

    offset: int | None
    sent_ns: int
    seen_ns: int

    @property
    def latency_ns(self) -> int:
        return self.seen_ns - self.sent_ns


# What a read output record says of its command: (offset or None, the ns it was sent), or None to skip.
Stamp = Callable[[Message], tuple[int | None, int] | None]


def reply_stamp(first_offset: int) -> Stamp:
    """Replies to commands from ``first_offset`` on: the command's offset and its origin time."""
    codec = default_codec()

    def stamp(message: Message) -> tuple[int | None, int] | None:
        _, reply = codec.decode(message.value(), message.headers())
        offset = reply["command_offset"]
        return (offset, reply["ts_ns"]) if offset >= first_offset else None

    return stamp


def copied_command_stamp(message: Message) -> tuple[int | None, int] | None:
    """A command copied by the pass-through: its origin time (the copy's offset is not the command's)."""
    _, command = default_codec().decode(message.value(), message.headers())
    return None, command["origin"]["ts_ns"]


def paced_deliveries(
    cluster: BenchCluster,
    commands: list[WireCommand],
    *,
    send_to: str,
    read_from: Sequence[str],
    stamp: Stamp,
    rate: float,
) -> dict[str, list[Delivery]]:
    """Produce ``commands`` to ``send_to`` at ``rate`` per second, each stamped with the wall clock,
    and note when each one's output is read from each topic of ``read_from`` by a ``read_committed``
    reader (partition 0 of each)."""
    codec = default_codec()
    # The reader commits nothing, so the broker keeps no group of it to delete afterwards.
    reader = CommittedConsumer(
        cluster.bootstrap,
        group_id=f"{cluster.prefix}paced-reader",
        client_id="bench-reader",
        config={"fetch.wait.max.ms": 5},
    )
    producer = IdempotentProducer(
        cluster.bootstrap, client_id="bench-gateway-paced", config=PACED_PRODUCER_CONFIG
    )
    try:
        reader.assign([TopicPartition(topic, PARTITION, OFFSET_END) for topic in read_from])
        for topic in read_from:
            wait_at_end(reader, topic)  # the start is resolved: no output can slip in before it
        # A producer's first record waits for its connection and producer id: not the steady state.
        producer.produce(cluster.add_topic(f"warm-up-to-{send_to.removeprefix(cluster.prefix)}"), b"")
        producer.flush(GUARD_S)
        deliveries: dict[str, list[Delivery]] = {topic: [] for topic in read_from}
        sent, interval = 0, 1.0 / rate
        next_send = time.perf_counter()
        deadline = time.monotonic() + GUARD_S
        while min(map(len, deliveries.values())) < len(commands):
            now = time.perf_counter()
            if sent < len(commands) and now >= next_send:
                command = commands[sent]
                command.record["origin"]["ts_ns"] = time.time_ns()
                value, headers = codec.encode(command.schema, command.record, checked=False)
                producer.produce(
                    send_to, value, key=command.symbol.encode(), partition=PARTITION, headers=headers
                )
                producer.poll(0)
                sent += 1
                next_send += interval
                continue
            wait = min(max(next_send - now, 0.0), POLL_S) if sent < len(commands) else POLL_S
            message = reader.poll(wait)
            if message is not None:
                seen = time.time_ns()
                if (stamped := stamp(message)) is not None:
                    deliveries[message.topic() or ""].append(Delivery(stamped[0], stamped[1], seen))
            elif time.monotonic() > deadline:
                missing = {topic: len(commands) - len(got) for topic, got in deliveries.items()}
                raise UserError(f"outputs never came: {missing}")
        return deliveries
    finally:
        producer.close()
        reader.close()


def passthrough_deliveries(
    cluster: BenchCluster, commands: list[WireCommand], settings: MatcherSettings, rate: float
) -> list[Delivery]:
    """The paced phase through the pass-through loop instead of the matcher: Kafka's own latency."""
    source, output = cluster.add_topic("paced-in"), cluster.add_topic("paced-out")
    loop = threading.Thread(
        target=passthrough,
        args=(cluster, len(commands), settings, "paced-passthrough", output),
        kwargs={"source": source},
        name="paced-passthrough",
        daemon=True,
    )
    loop.start()
    try:
        return paced_deliveries(
            cluster, commands, send_to=source, read_from=[output], stamp=copied_command_stamp, rate=rate
        )[output]
    finally:
        loop.join(GUARD_S)


# A paced command's way, each phase ending at a moment the matcher recorded (matcher.timing):
# to the matcher (produce, broker, fetch), its take applied, waiting for its transaction, the
# transaction's produce, send_offsets and commit, and the committed reply becoming visible to a
# reader. With early replies, ``early_reply`` is from applied to the early copy read.
PHASES = ("to_matcher", "apply", "batch_wait", "produce", "send_offsets", "commit", "visible")
EARLY_PHASE = "early_reply"


def phase_breakdown(
    committed: list[Delivery], early: list[Delivery], timings: TimingLog
) -> dict[str, dict[str, float]]:
    """p50 and p99 of each phase (``PHASES``, then ``EARLY_PHASE``) over the paced commands, in ms."""
    samples: dict[str, list[int]] = {name: [] for name in (*PHASES, EARLY_PHASE)}
    for delivery in committed:
        moments = timings.moments(delivery.offset)
        if moments is not None:
            ends = (delivery.sent_ns, *moments, delivery.seen_ns)
            for name, start, end in zip(PHASES, ends, ends[1:], strict=False):
                samples[name].append(end - start)
    for delivery in early:
        moments = timings.moments(delivery.offset)
        if moments is not None:
            samples[EARLY_PHASE].append(delivery.seen_ns - moments.applied_ns)
    return {
        name: {"p50": percentile_ms(values, 50), "p99": percentile_ms(values, 99)}
        for name, values in samples.items()
        if values
    }


def log_slowest_transactions(timings: TimingLog, first_offset: int, count: int = 5) -> None:
    """The paced phase's slowest transactions with their phases, on stderr: where a spike came from."""
    slowest = sorted(timings.transactions(first_offset), key=TransactionTimes.total_s, reverse=True)
    for times in slowest[:count]:
        log.info(
            "slow transaction",
            extra={
                "ms": round(times.total_s() * 1000, 1),
                "offsets": [times.takes[0].first, times.takes[-1].end] if times.takes else None,
                "phases_ms": times.phases_ms(),
            },
        )


def wait_at_end(reader: CommittedConsumer, topic: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not reader.at_end(topic, PARTITION):
        reader.poll(POLL_S)
        if time.monotonic() > deadline:
            raise UserError(f"{topic} could not be read")


def percentile_ms(latencies_ns: list[int], percent: float) -> float:
    """The ``percent``-th percentile of ``latencies_ns``, in milliseconds.

    Interpolated between the two nearest samples, as ``statistics.quantiles(method="inclusive")``
    does, for any percent (99.9 included).
    """
    ordered = sorted(latencies_ns)
    rank = (len(ordered) - 1) * percent / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return round(value / 1e6, 2)


# --- the command ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flow", type=Path, required=True, help="CSV written by orderflow.py")
    parser.add_argument(
        "--e2e-commands", type=positive_int, default=3000, help="commands of the paced latency phase"
    )
    parser.add_argument(
        "--e2e-rate", type=positive_int, default=1000, help="commands per second of the paced latency phase"
    )
    parser.add_argument(
        "--warm-up-s",
        type=float,
        default=40.0,
        help="untimed pass-through rounds first, for so long (a fresh broker needs tens of seconds)",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a cProfile of the matcher thread here (pstats); its rates are then not representative",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE.png",
        help="draw the latency distribution and the phase breakdown here (matplotlib)",
    )


def positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def run(args: argparse.Namespace) -> int:
    rows = list(read_flow(args.flow))
    if not rows:
        raise UserError(f"{args.flow} has no rows")
    settings = load_settings(MatcherSettings)
    configure_logging(settings.log_level, settings.log_format)
    symbols = list(dict.fromkeys(row.symbol for row in rows))
    with (
        tempfile.TemporaryDirectory(prefix="exchange-bench-") as workdir,
        bench_cluster(settings, symbols, Path(workdir)) as cluster,
    ):
        matcher_settings = cluster.matcher_settings(settings)
        log.info("preloading", extra={"commands": len(rows), "prefix": cluster.prefix})
        end = produce_commands(cluster.bootstrap, cluster.topics.orders, (wire_command(row) for row in rows))
        # The flow stays in memory for the paced phases. A matcher process holds no such thing
        # (and the matcher freezes what it finds at recovery), but the pass-through loop runs in
        # this process too: unfrozen, every full collection walked the flow (70-130 ms each).
        gc.collect()
        gc.freeze()
        warm_up(cluster, end, settings, args.warm_up_s)
        log.info("pass-through, before the matcher")
        baselines = [passthrough(cluster, end, settings, "passthrough-1")]
        paced = paced_commands(rows, args.e2e_commands)
        log.info("pass-through latency", extra={"commands": len(paced), "rate": args.e2e_rate})
        floor = passthrough_deliveries(cluster, paced, settings, args.e2e_rate)
        log.info("matcher")
        cluster.groups.append(group_id(cluster.prefix, PARTITION))
        matcher = InProcessMatcher(matcher_settings, args.cprofile).start()
        try:
            matched = matcher.throughput(end)
            log.info("latency", extra={"commands": len(paced), "rate": args.e2e_rate})
            replies = [cluster.topics.replies]
            if settings.matcher_early_replies:
                replies.append(cluster.topics.replies_early)
            deliveries = paced_deliveries(
                cluster,
                paced,
                send_to=cluster.topics.orders,
                read_from=replies,
                stamp=reply_stamp(end),
                rate=args.e2e_rate,
            )
        finally:
            exit_code = matcher.stop()
        if exit_code != 0:
            raise UserError(f"the matcher exited with code {exit_code}")
        log_slowest_transactions(matcher.timings, end)
        # Again after the matcher, which warmed the broker further: the best run counts.
        log.info("pass-through, after the matcher")
        baselines.append(passthrough(cluster, end, settings, "passthrough-2"))
    committed = deliveries[cluster.topics.replies]
    early = deliveries.get(cluster.topics.replies_early, [])
    phases = phase_breakdown(committed, early, matcher.timings)
    latency = Latency(early or committed, committed, floor, phases)
    if args.plot is not None:
        plot_latency(latency, args.plot)
    result = report(rows, args, settings=settings, baselines=baselines, matched=matched, latency=latency)
    print(json.dumps(result))
    return 0


class Latency(NamedTuple):
    """The paced phase through the matcher and through the pass-through, and the matcher's phases.

    ``matcher`` is the first reply a gateway can read (the early copy when the matcher writes
    one), ``committed`` the copy its transaction committed.
    """

    matcher: list[Delivery]
    committed: list[Delivery]
    passthrough: list[Delivery]
    phases: dict[str, dict[str, float]]

    def figures(self) -> dict[str, object]:
        """The JSON line's latency keys."""
        matcher = [delivery.latency_ns for delivery in self.matcher]
        committed = [delivery.latency_ns for delivery in self.committed]
        floor = [delivery.latency_ns for delivery in self.passthrough]
        return {
            "e2e_p50_ms": percentile_ms(matcher, 50),
            "e2e_p99_ms": percentile_ms(matcher, 99),
            "e2e_p999_ms": percentile_ms(matcher, 99.9),
            "e2e_max_ms": round(max(matcher) / 1e6, 2),
            "committed_e2e_p50_ms": percentile_ms(committed, 50),
            "committed_e2e_p99_ms": percentile_ms(committed, 99),
            "passthrough_e2e_p50_ms": percentile_ms(floor, 50),
            "passthrough_e2e_p99_ms": percentile_ms(floor, 99),
            "passthrough_e2e_max_ms": round(max(floor) / 1e6, 2),
            "phases_ms": self.phases,
        }


def plot_latency(latency: Latency, path: Path) -> None:
    """Draw the latency distributions (matcher and pass-through) and the phase breakdown to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (distribution, phases) = pyplot.subplots(1, 2, figsize=(13, 5))
    curves = {"first reply": latency.matcher, "committed reply": latency.committed}
    for label, deliveries in (*curves.items(), ("pass-through", latency.passthrough)):
        values = sorted(delivery.latency_ns / 1e6 for delivery in deliveries)
        shares = [(n + 1) / len(values) for n in range(len(values))]
        distribution.plot(values, shares, label=label)
    distribution.set(xscale="log", xlabel="end to end (ms)", ylabel="share of commands at or below")
    distribution.set_title("latency at the paced rate")
    distribution.grid(True, which="both", alpha=0.3)
    distribution.legend()
    names = list(latency.phases)
    for offset, percentile in ((-0.2, "p50"), (0.2, "p99")):
        positions = [n + offset for n in range(len(names))]
        phases.barh(positions, [latency.phases[name][percentile] for name in names], 0.4, label=percentile)
    phases.set_yticks(range(len(names)), names)
    phases.invert_yaxis()
    phases.set(xlabel="ms", title="the matcher's phases per command")
    phases.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def report(
    rows: list[FlowRow],
    args: argparse.Namespace,
    *,
    settings: MatcherSettings,
    baselines: list[Throughput],
    matched: Throughput,
    latency: Latency,
) -> dict[str, object]:
    """The JSON line: the issue's keys first, then what helps to read them.

    The pass-through's best run is Kafka's limit: the ratio is then never flattered by a slow one.
    """
    mix = Counter(row.order_type or row.action for row in rows)
    baseline = max(baselines, key=lambda run: run.per_s)
    figures = latency.figures()
    return {
        "commands": len(rows),
        "commands_per_s": round(matched.per_s),
        "passthrough_per_s": round(baseline.per_s),
        "ratio": round(matched.per_s / baseline.per_s, 3) if baseline.per_s else None,
        **figures,
        "matcher_s": round(matched.seconds, 3),
        "passthrough_s": round(baseline.seconds, 3),
        "matcher_transactions": matched.transactions,
        "matcher_background_commits": matched.background_commits,
        "passthrough_transactions": baseline.transactions,
        "passthrough_runs_per_s": [round(run.per_s) for run in baselines],
        "batch_max_commands": settings.matcher_batch_max_commands,
        "batch_max_ms": settings.matcher_batch_max_ms,
        "snapshot_every_commands": settings.matcher_snapshot_every_commands,
        "early_replies": settings.matcher_early_replies,
        "partitions": 1,
        "symbols": len({row.symbol for row in rows}),
        "flow": args.flow.name,
        "flow_mix": dict(sorted(mix.items())),
        "e2e_commands": len(latency.matcher),
        "e2e_rate_per_s": args.e2e_rate,
        "warm_up_s": args.warm_up_s,
        "profiled": args.cprofile is not None,
        "native": native.status(),
        "notes": f"{RATE_NOTE}; {LATENCY_NOTE}",
    }
