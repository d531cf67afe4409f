"""`exchange bench recovery --resting N`: matcher process start to ready with N resting orders.

Setup (untimed), under a fresh ``bench.<id>.`` prefix on one partition:

1. A matching engine is built offline with N resting, non-crossing limit orders of one symbol
   (bids below 10 000, asks above, over 1 000 price levels a side): each order is the `orders`
   record a gateway would send (``bench.wireflow``) decoded by the matcher's own
   ``decode_command`` and applied at offset 0..N-1, so its state is exactly what a matcher
   would hold after those commands. Its ``snapshot()`` is the partition's StateSnapshot with
   ``orders_offset`` S = N.
2. `orders` gets S placeholders (empty records that recovery never reads: they only move the
   offsets on, which takes seconds instead of encoding a million commands), then R = 10 % of N
   real commands after them: a mix of new passive orders, cancels of resting ones, crossing
   limit orders and market orders.
3. The snapshot record and the consumer group's offset C = S + R are committed in one
   transaction, as the matcher itself commits them.

Then ``exchange matcher --partition 0`` starts as a process and the clock runs from its start
until its ``/readyz`` answers 200: interpreter start-up and imports, Kafka clients,
``init_transactions``, reading the snapshot, restoring it and replaying the R commands. Its
own ``exchange_matcher_recovery_seconds`` (snapshot read + restore + replay) is reported
beside it.

The state-snapshots topic takes records up to ``STATE_SNAPSHOT_MAX_BYTES``, and the matcher's
producer refuses bigger ones. When the snapshot is bigger, the run says so
(``snapshot_over_limit``) and still writes it, with a producer limit raised for this one record
(the broker's limit applies to the compressed batch), so the recovery time it would take is
known.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from confluent_kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from bench.pipeline import PARTITION, BenchCluster, bench_cluster, positive_int, produce_commands
from bench.wireflow import FlowRow, wire_command
from matcher.core import MatchingEngine
from matcher.recovery import state_snapshot_key, state_snapshot_record
from matcher.service import group_id
from matcher.snapshots import collector_paused
from matcher.wire import core_params, decode_command
from runtime.broker import free_port, log_excerpt
from runtime.errors import UserError
from runtime.kafka import CommittedConsumer, FatalKafkaError, IdempotentProducer, TransactionalProducer
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.symbols import load_registry
from runtime.topics import STATE_SNAPSHOT_MAX_BYTES, TopicNames
from schemas import default_codec

log = logging.getLogger("bench.recovery")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "SYM000"
MID_PRICE = 10_000  # the registry's reference price (bench.wireflow); bids rest below, asks above
LEVELS = 1_000  # price levels a side the resting orders spread over
# The producer's own limit for the one snapshot record, when it exceeds the matcher's.
HEADROOM_BYTES = 1024 * 1024
READY_POLL_S = 0.01
GUARD_S = 600.0
STOP_GRACE_S = 30.0
PLACEHOLDER_KEY = b"bench-placeholder"
PLACEHOLDER_PRODUCER_CONFIG = {"linger.ms": 50, "batch.num.messages": 100_000, "compression.type": "lz4"}


class Snapshot(NamedTuple):
    """An engine snapshot as the matcher would commit it, with what the bench learnt making it."""

    state_bytes: int
    value: bytes
    headers: list[tuple[str, bytes]]
    encode_s: float
    restore_s: float


class Recovery(NamedTuple):
    """What one matcher start took: to ready (outside view) and its own recovery figures (/metrics)."""

    ready_s: float
    recovery_s: float | None
    replayed: int | None


# --- the state -------------------------------------------------------------------------------------


def resting_rows(count: int) -> Iterator[FlowRow]:
    """``count`` limit orders that never cross: bids and asks alternate over ``LEVELS`` levels a side."""
    for seq in range(count):
        buy = seq % 2 == 0
        depth = (seq // 2) % LEVELS
        price = MID_PRICE - 1 - depth if buy else MID_PRICE + 1 + depth
        yield FlowRow(seq, "new", SYMBOL, seq, "buy" if buy else "sell", "limit", price, 1 + seq % 50)


def replay_rows(resting: int, count: int, seed: int) -> Iterator[FlowRow]:
    """``count`` commands after the snapshot: 50 % passive, 30 % cancels, 10 % crossing, 10 % market."""
    rng = random.Random(seed)
    for seq in range(resting, resting + count):
        kind, side = seq % 10, rng.choice(("buy", "sell"))
        sign = -1 if side == "buy" else 1
        if kind < 5:
            price = MID_PRICE + sign * (1 + rng.randrange(LEVELS))
            yield FlowRow(seq, "new", SYMBOL, seq, side, "limit", price, rng.randint(1, 50))
        elif kind < 8:
            yield FlowRow(seq, "cancel", SYMBOL, rng.randrange(resting), "", "", None, 0)
        elif kind == 8:  # through the best opposite level by up to 3 ticks
            price = MID_PRICE - sign * (1 + rng.randrange(3))
            yield FlowRow(seq, "new", SYMBOL, seq, side, "limit", price, rng.randint(1, 100))
        else:
            yield FlowRow(seq, "new", SYMBOL, seq, side, "market", None, rng.randint(1, 100))


def build_snapshot(registry_file: Path, resting: int) -> Snapshot:
    """The StateSnapshot record (``orders_offset`` = ``resting``) of an engine holding ``resting`` orders."""
    registry = load_registry(registry_file)
    engine = MatchingEngine(PARTITION, map(core_params, registry.symbols_of_partition(PARTITION)))
    ts = 0
    for row in resting_rows(resting):
        command = wire_command(row)
        decoded = decode_command(command.schema, command.record, PARTITION, registry.partition_count)
        assert decoded.command is not None and decoded.rejection is None, decoded
        engine.apply(decoded.command, row.seq)
        ts = decoded.origin.ts_ns
    if engine.resting_count() != resting:
        raise AssertionError(f"{engine.resting_count()} orders rest, {resting} were placed")
    built = time.perf_counter()
    with collector_paused():  # as the matcher takes it
        state = engine.snapshot()
    encoded = time.perf_counter()
    del engine
    restore_s = _restore_seconds(state)
    record = state_snapshot_record(PARTITION, resting, ts, [state])
    value, headers = default_codec().encode("StateSnapshot", record, checked=False)
    return Snapshot(len(state), value, headers, encoded - built, restore_s)


def _restore_seconds(state: bytes) -> float:
    """How long ``restore`` of ``state`` takes on its own, in this process (the matcher does the same)."""
    gc.collect()
    engine = MatchingEngine(PARTITION)
    started = time.perf_counter()
    with collector_paused():  # as the matcher restores it
        engine.restore(state)
    return time.perf_counter() - started


# --- the log --------------------------------------------------------------------------------------


def write_placeholders(bootstrap: str, topic: str, count: int, partition: int = PARTITION) -> None:
    """``count`` empty records: offsets below the snapshot's, which recovery never reads."""
    producer = IdempotentProducer(bootstrap, client_id="bench-setup", config=PLACEHOLDER_PRODUCER_CONFIG)
    for _ in range(count):
        producer.produce(topic, None, key=PLACEHOLDER_KEY, partition=partition)
    producer.close(GUARD_S)


def commit_snapshot(cluster: BenchCluster, snapshot: Snapshot, committed: int) -> None:
    """The snapshot record and the matcher group's offset ``committed``, in one transaction."""
    group = group_id(cluster.prefix, PARTITION)
    cluster.groups.append(group)
    try:
        commit_state(cluster.bootstrap, cluster.topics, group, (snapshot.value, snapshot.headers), committed)
    except FatalKafkaError as exc:
        raise UserError(
            f"the broker refused the state snapshot of {len(snapshot.value)} bytes "
            f"(limit {STATE_SNAPSHOT_MAX_BYTES}): {exc}"
        ) from None


def commit_state(
    bootstrap: str,
    topics: TopicNames,
    group: str,
    snapshot: tuple[bytes, list[tuple[str, bytes]]],
    committed: int,
) -> None:
    """Seed partition 0 as a matcher would leave it: ``snapshot`` (a StateSnapshot's value and
    headers) and ``group``'s offset ``committed`` in one transaction (the `orders` record before
    ``committed`` must exist)."""
    value, headers = snapshot
    orders = topics.orders
    consumer = CommittedConsumer(bootstrap, group_id=group, client_id="bench-setup")
    producer = TransactionalProducer(
        bootstrap,
        transactional_id=f"{group}.seed",
        config={
            "compression.type": "lz4",
            "message.max.bytes": max(STATE_SNAPSHOT_MAX_BYTES, len(value) + HEADROOM_BYTES),
            "transaction.timeout.ms": 60_000,
        },
    )
    try:
        # Reading the last command puts the consumer's position at `committed`, the offset to commit.
        consumer.assign([TopicPartition(orders, PARTITION, committed - 1)])
        deadline = time.monotonic() + GUARD_S
        while consumer.poll(0.2) is None:
            if time.monotonic() > deadline:
                raise UserError(f"{orders} offset {committed - 1} could not be read")
        producer.init()
        producer.begin()
        key = state_snapshot_key(PARTITION)
        producer.produce(topics.state_snapshots, value, key=key, partition=PARTITION, headers=headers)
        producer.commit(consumer)
    finally:
        consumer.close()


# --- the timed start ------------------------------------------------------------------------------


def time_matcher_start(cluster: BenchCluster, log_file: Path) -> Recovery:
    """Start ``exchange matcher --partition 0``; seconds until /readyz answers 200, and its /metrics.

    The matcher's log goes to ``log_file``; its last lines are quoted if it never gets ready.
    """
    port = free_port()
    env = cluster.process_env(EXCHANGE_MATCHER_OPS_PORT=str(port))
    command = [sys.executable, "-m", "exchange", "matcher", "--partition", str(PARTITION)]
    with open(log_file, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            ready_s = _wait_ready(process, f"http://127.0.0.1:{port}", started)
            metrics = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        except UserError as exc:
            raise UserError(f"{exc}; its log: {log_excerpt(log_file)}") from None
        finally:
            stop_process(process)
    replayed = metrics.get("exchange_matcher_recovery_replayed_commands")
    return Recovery(
        ready_s,
        metrics.get("exchange_matcher_recovery_seconds"),
        int(replayed) if replayed is not None else None,
    )


def _wait_ready(process: subprocess.Popen[bytes], url: str, started: float) -> float:
    deadline = time.monotonic() + GUARD_S
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass  # not listening yet
        if process.poll() is not None:
            raise UserError(f"the matcher exited with code {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise UserError(f"the matcher was not ready within {GUARD_S:.0f} s")
        time.sleep(READY_POLL_S)


def _samples(exposition: str) -> dict[str, float]:
    """Sample name -> value of a Prometheus exposition (one partition: labels do not matter)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period."""
    process.terminate()
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the command ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resting", type=positive_int, default=1_000_000, help="resting orders in the snapshot"
    )
    parser.add_argument(
        "--replay-percent",
        type=int,
        default=10,
        choices=range(101),
        metavar="0..100",
        help="commands after the snapshot, in percent of --resting",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the replayed commands")


def run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per /readyz poll
    resting, replay = args.resting, args.resting * args.replay_percent // 100
    with (
        tempfile.TemporaryDirectory(prefix="exchange-bench-") as workdir,
        bench_cluster(settings, [SYMBOL], Path(workdir)) as cluster,
    ):
        setup_started = time.perf_counter()
        log.info("building the state", extra={"resting": resting, "prefix": cluster.prefix})
        snapshot = build_snapshot(cluster.registry_file, resting)
        log.info("writing the log", extra={"placeholders": resting, "commands": replay})
        write_placeholders(cluster.bootstrap, cluster.topics.orders, resting)
        produce_commands(
            cluster.bootstrap,
            cluster.topics.orders,
            (wire_command(row) for row in replay_rows(resting, replay, args.seed)),
        )
        commit_snapshot(cluster, snapshot, resting + replay)
        setup_s = time.perf_counter() - setup_started
        gc.collect()
        log.info("starting the matcher")
        recovery = time_matcher_start(cluster, Path(workdir) / "matcher.log")
    print(json.dumps(report(resting, replay, snapshot, recovery, setup_s)))
    return 0


def report(
    resting: int, replay: int, snapshot: Snapshot, recovery: Recovery, setup_s: float
) -> dict[str, Any]:
    """The JSON line: the issue's keys first, then what helps to read them."""
    startup = recovery.ready_s - recovery.recovery_s if recovery.recovery_s is not None else None
    return {
        "resting": resting,
        "snapshot_bytes": snapshot.state_bytes,
        "recovery_s": round(recovery.ready_s, 3),
        "replayed": recovery.replayed,
        "replay_commands": replay,
        "matcher_recovery_s": _rounded(recovery.recovery_s),
        "startup_s": _rounded(startup),
        "snapshot_record_bytes": len(snapshot.value),
        "snapshot_limit_bytes": STATE_SNAPSHOT_MAX_BYTES,
        "snapshot_over_limit": len(snapshot.value) > STATE_SNAPSHOT_MAX_BYTES,
        "bytes_per_resting_order": round(snapshot.state_bytes / resting, 1),
        "offline_snapshot_s": round(snapshot.encode_s, 3),
        "offline_restore_s": round(snapshot.restore_s, 3),
        "setup_s": round(setup_s, 1),
        "partitions": 1,
        "symbols": 1,
        "price_levels": min(LEVELS, (resting + 1) // 2) * 2,
        "notes": (
            "recovery_s: `exchange matcher` process start to /readyz 200 (interpreter, imports, Kafka "
            "clients, init_transactions, then the matcher's own recovery); matcher_recovery_s: its "
            "exchange_matcher_recovery_seconds (read snapshot + restore + replay); startup_s: the "
            "difference. offline_*_s: engine.snapshot()/restore() timed in the bench process. "
            "Setup: engine built offline from decoded NewOrder records, placeholders below the "
            "snapshot offset, snapshot + group offset committed in one transaction"
        ),
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
