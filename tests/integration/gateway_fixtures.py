"""A gateway on the real broker: topics under a test's prefix, matchers in threads, the app under uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from exchange.client import ExchangeClient
from gateway.app import create_app
from gateway.settings import GatewaySettings
from matcher.service import Matcher, MatcherSettings
from runtime.broker import free_port
from runtime.kafka import CommittedConsumer
from runtime.shutdown import Shutdown
from runtime.topics import TopicNames, ensure_topics, topic_specs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_GUARD_S = 60.0

REGISTRY_YAML = """\
partition_count: 2
symbols:
  BTC-USD:
    partition: 0
    tick_size: "0.01"
    lot_size: "0.001"
    min_qty: "0.001"
    max_qty: "100"
    reference_price: "65000.00"
    band_percent: "10"
    status: trading
  ETH-USD:
    partition: 1
    tick_size: "0.01"
    lot_size: "0.01"
    min_qty: "0.01"
    max_qty: "1000"
    reference_price: "3500.00"
    band_percent: "10"
    status: trading
"""

# Every key is "<id>-secret-of-sixteen+" so tests can sign as anyone.
KEYS_YAML = """\
keys:
  - {id: alice, secret: alice-secret-of-sixteen, account: alice, scopes: [read, trade]}
  - {id: bob, secret: bob-secret-of-sixteen, account: bob, scopes: [read, trade]}
  - {id: viewer, secret: viewer-secret-of-sixteen, account: viewer, scopes: [read]}
  - {id: ops, secret: ops-secret-of-sixteen, account: ops, scopes: [admin]}
"""


def secret_of(key_id: str) -> str:
    return f"{key_id}-secret-of-sixteen"


@dataclass
class GatewayCluster:
    """Topics, a registry and keys under one test's prefix; matchers and gateways started on demand."""

    bootstrap: str
    prefix: str
    topics: TopicNames
    registry_file: Path
    keys_file: Path
    matchers: dict[int, tuple[Shutdown, threading.Thread]] = field(default_factory=dict)
    servers: list[tuple[uvicorn.Server, threading.Thread]] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "EXCHANGE_KAFKA_BOOTSTRAP": self.bootstrap,
            "EXCHANGE_TOPIC_PREFIX": self.prefix,
            "EXCHANGE_SYMBOLS_FILE": str(self.registry_file),
            "EXCHANGE_REPLIES_PARTITIONS": "2",
            "EXCHANGE_GATEWAY_KEYS_FILE": str(self.keys_file),
            "EXCHANGE_LOG_FORMAT": "text",
            **extra,
        }

    def start_matcher(self, partition: int) -> None:
        settings = MatcherSettings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            symbols_file=self.registry_file,
            matcher_batch_max_ms=2,
        )
        shutdown = Shutdown()
        matcher = Matcher(settings, partition, shutdown=shutdown, metrics_registry=CollectorRegistry())
        thread = threading.Thread(target=matcher.run, name=f"matcher-{partition}", daemon=True)
        thread.start()
        self.matchers[partition] = (shutdown, thread)

    def restart_dead_matchers(self) -> None:
        """Start again a matcher that ended (a fatal Kafka error ends one, as a pod would crash)."""
        for partition, (_, thread) in list(self.matchers.items()):
            if not thread.is_alive():
                self.start_matcher(partition)

    def start_gateway(self, **overrides: Any) -> str:
        """A gateway in a thread of the test process; its base URL once it is ready."""
        settings = GatewaySettings(
            kafka_bootstrap=self.bootstrap,
            topic_prefix=self.prefix,
            symbols_file=self.registry_file,
            replies_partitions=2,
            gateway_keys_file=self.keys_file,
            **overrides,
        )
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
        thread.start()
        self.servers.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        return url

    def start_gateway_process(self, instance_id: str) -> str:
        """`exchange gateway` as a process of its own."""
        port = free_port()
        env = self.env(EXCHANGE_GATEWAY_PORT=str(port), EXCHANGE_GATEWAY_INSTANCE_ID=instance_id)
        process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "gateway"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        return url

    def client(self, url: str, key_id: str = "alice", *, retries: int = 0) -> ExchangeClient:
        return ExchangeClient(url, key_id, secret_of(key_id), retries=retries)

    def orders_count(self) -> int:
        """How many records `orders` holds over every partition (the gateway writes without transactions)."""
        reader = CommittedConsumer(self.bootstrap, group_id="test-count", client_id="test-count")
        try:
            return sum(reader.high_watermark(self.topics.orders, p, 10) for p in (0, 1))
        finally:
            reader.close()

    def stop(self) -> None:
        for server, thread in self.servers:
            server.should_exit = True
            thread.join(20)
        for process in self.processes:
            process.terminate()
            process.wait(20)
        for shutdown, thread in self.matchers.values():
            shutdown.request()
            thread.join(60)


def wait_ready(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + READY_GUARD_S
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            pytest.fail(f"gateway at {url} never became ready")
        time.sleep(0.1)


@pytest.fixture
def gateway_cluster(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> Iterator[GatewayCluster]:
    """Topics for two partitions, both matchers running; gateways started by the test."""
    registry_file = tmp_path / "symbols.yaml"
    registry_file.write_text(REGISTRY_YAML)
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(KEYS_YAML)
    topics = TopicNames.with_prefix(topic_prefix)
    ensure_topics(kafka_admin, topic_specs(topics, partitions=2, replies_partitions=2))
    cluster = GatewayCluster(kafka_bootstrap, topic_prefix, topics, registry_file, keys_file)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def running(gateway_cluster: GatewayCluster) -> Callable[..., tuple[GatewayCluster, str]]:
    """``running(**gateway_settings)``: both matchers and one gateway up; the cluster and the URL."""

    def start(**overrides: Any) -> tuple[GatewayCluster, str]:
        for partition in (0, 1):
            gateway_cluster.start_matcher(partition)
        return gateway_cluster, gateway_cluster.start_gateway(**overrides)

    return start
