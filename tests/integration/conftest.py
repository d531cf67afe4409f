"""Fixtures for matcher tests on the real broker: a small cluster under a unique prefix, flows, matchers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from bench.wireflow import FlowRow, WireCommand, flow_registry_yaml, read_flow, wire_command
from matcher.service import Matcher, MatcherSettings, group_id
from runtime.broker import free_port
from runtime.kafka import CommittedConsumer, IdempotentProducer, read_to_end
from runtime.shutdown import Shutdown
from runtime.symbols import SymbolRegistry, load_registry
from runtime.topics import TopicNames, ensure_topics, topic_specs
from schemas import default_codec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORDERFLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"
CATCH_UP_GUARD_S = 120.0
REPLIES_PARTITIONS = 2


def generate_flow(path: Path, profile: str, orders: int, symbols: int = 1, seed: int = 1) -> list[FlowRow]:
    """A flow from the shared generator, written to ``path`` and read back."""
    subprocess.run(
        [sys.executable, str(ORDERFLOW), "--profile", profile, "--orders", str(orders),
         "--symbols", str(symbols), "--seed", str(seed), "-o", str(path)],
        check=True,
    )  # fmt: skip
    return list(read_flow(path))


@dataclass
class FlowCluster:
    """Topics under a unique prefix, a registry for the flow's symbols, and the matcher settings for them."""

    bootstrap: str
    topics: TopicNames
    registry: SymbolRegistry
    settings: MatcherSettings
    env: dict[str, str]

    def partition_of(self, symbol: str) -> int:
        return self.registry[symbol].partition

    def produce(self, commands: list[WireCommand], partition: int | None = None) -> None:
        """Produce commands to `orders` as a gateway does: keyed by symbol, to the registry's partition
        (or to ``partition``: a symbol the registry does not list yet)."""
        codec = default_codec()
        producer = IdempotentProducer(self.bootstrap, client_id="test-gateway", config={"linger.ms": 5})
        for command in commands:
            value, headers = codec.encode(command.schema, command.record)
            producer.produce(
                self.topics.orders,
                value,
                key=command.symbol.encode(),
                partition=self.partition_of(command.symbol) if partition is None else partition,
                headers=headers,
            )
        producer.close()

    def produce_raw(self, partition: int, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        producer = IdempotentProducer(self.bootstrap, client_id="test-gateway")
        producer.produce(self.topics.orders, value, key=b"garbage", partition=partition, headers=headers)
        producer.close()

    def committed(self, partition: int) -> int:
        """The matcher's committed `orders` offset of ``partition`` (0 when nothing is committed)."""
        group = group_id(self.settings.topic_prefix, partition)
        reader = CommittedConsumer(self.bootstrap, group_id=group, client_id="test-offsets")
        try:
            found = reader.committed([TopicPartition(self.topics.orders, partition)])
        finally:
            reader.close()
        return found[(self.topics.orders, partition)] or 0

    def wait_committed(self, partition: int, offset: int, guard_s: float = CATCH_UP_GUARD_S) -> None:
        deadline = time.monotonic() + guard_s
        while self.committed(partition) < offset:
            if time.monotonic() > deadline:
                pytest.fail(f"matcher did not commit offset {offset} within {guard_s} s")
            time.sleep(0.2)

    def replies(self) -> list[dict[str, Any]]:
        """Every committed reply, of every replies partition."""
        partitions = range(REPLIES_PARTITIONS)
        return [r for p in partitions for _, r in read_records(self.bootstrap, self.topics.replies, p)]

    def reply_copies(self, topic: str) -> list[tuple[str, bytes]]:
        """Every record of ``topic`` (`replies` or `replies-early`), every partition: (request id, value)."""
        codec = default_codec()
        copies = []
        for partition in range(REPLIES_PARTITIONS):
            for message in read_to_end(self.bootstrap, topic, partition):
                value = message.value() or b""
                copies.append((codec.decode(value, message.headers())[1]["request_id"], value))
        return copies

    def matcher_settings(self, **overrides: object) -> MatcherSettings:
        return self.settings.model_copy(update=overrides)


@pytest.fixture
def make_cluster(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> Callable[..., FlowCluster]:
    """``make(symbols, partitions=1)``: topics and a registry for these symbols under this test's prefix."""

    def make(symbols: list[str], partitions: int = 1) -> FlowCluster:
        registry_file = tmp_path / "symbols.yaml"
        registry_file.write_text(flow_registry_yaml(symbols, partitions))
        topics = TopicNames.with_prefix(topic_prefix)
        specs = topic_specs(topics, partitions=partitions, replies_partitions=REPLIES_PARTITIONS)
        ensure_topics(kafka_admin, specs)
        env = {
            "EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EXCHANGE_TOPIC_PREFIX": topic_prefix,
            "EXCHANGE_SYMBOLS_FILE": str(registry_file),
            "EXCHANGE_LOG_FORMAT": "text",
        }
        settings = MatcherSettings(
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            symbols_file=registry_file,
            matcher_batch_max_commands=200,
            matcher_batch_max_ms=5,
        )
        return FlowCluster(kafka_bootstrap, topics, load_registry(registry_file), settings, env)

    return make


class RunningMatcher:
    """A matcher running in a thread of the test process."""

    def __init__(self, cluster: FlowCluster, partition: int, settings: MatcherSettings) -> None:
        self.shutdown = Shutdown()
        self.matcher = Matcher(
            settings, partition, shutdown=self.shutdown, metrics_registry=CollectorRegistry()
        )
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"matcher-{partition}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.exit_code = self.matcher.run()

    def stop(self) -> int | None:
        self.shutdown.request()
        self._thread.join(60)
        return self.exit_code


@pytest.fixture
def start_matcher() -> Iterator[Callable[..., RunningMatcher]]:
    """``start(cluster, partition=0, **settings)``: a matcher in a thread, stopped after the test."""
    running: list[RunningMatcher] = []

    def start(cluster: FlowCluster, partition: int = 0, **overrides: object) -> RunningMatcher:
        matcher = RunningMatcher(cluster, partition, cluster.matcher_settings(**overrides))
        running.append(matcher)
        return matcher

    yield start
    for matcher in running:
        matcher.stop()


class MatcherProcess:
    """`exchange matcher` as its own process (for kill -9 and SIGSTOP), with its ops port known.

    One still running when its test ends (a test that failed half-way) is killed then
    (``kill_leftover_matchers``): it would go on matching, and holding CPU, for the whole session.
    """

    started: ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(self, cluster: FlowCluster, partition: int = 0, **env: str) -> None:
        self.ops_port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "matcher", "--partition", str(partition)],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                **cluster.env,
                "EXCHANGE_MATCHER_BATCH_MAX_MS": "5",
                "EXCHANGE_MATCHER_OPS_PORT": str(self.ops_port),
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        MatcherProcess.started.append(self.process)

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ops_port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, guard_s: float = CATCH_UP_GUARD_S) -> None:
        deadline = time.monotonic() + guard_s
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"matcher never became ready (exit code {self.process.poll()})")
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def kill_leftover_matchers() -> Iterator[None]:
    """After each test, kill the matcher processes it started that still run."""
    yield
    while MatcherProcess.started:
        process = MatcherProcess.started.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def flow_commands(rows: list[FlowRow]) -> list[WireCommand]:
    return [wire_command(row) for row in rows]


def read_records(bootstrap: str, topic: str, partition: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Every committed record of a partition, decoded: (schema name, record)."""
    codec = default_codec()
    return [codec.decode(m.value(), m.headers()) for m in read_to_end(bootstrap, topic, partition)]


def read_raw(bootstrap: str, topic: str, partition: int = 0) -> list[bytes]:
    """Every committed value of a partition, as bytes."""
    return [m.value() or b"" for m in read_to_end(bootstrap, topic, partition)]
