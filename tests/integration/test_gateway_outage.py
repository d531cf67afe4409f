"""The broker killed while orders flow through the gateway, then restarted: nothing acknowledged is lost,
nothing refused is executed, nothing is doubled.

This test runs a broker of its own (the session's broker serves every other test).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from exchange.client import ClientError, ExchangeClient
from runtime.broker import LocalBroker, free_port
from runtime.kafka import admin_client
from runtime.settings import Settings, load_settings
from runtime.topics import TopicNames, ensure_topics, topic_specs
from tests.integration.conftest import read_records
from tests.integration.gateway_fixtures import KEYS_YAML, REGISTRY_YAML, GatewayCluster

FLOW_BEFORE_KILL_S = 2.0
DOWN_S = 3.0
FLOW_AFTER_RESTART_S = 3.0
SETTLE_GUARD_S = 60.0


class OrderFlow:
    """Orders sent one after another, each with its own client order id, and how each was answered."""

    def __init__(self, cluster: GatewayCluster, url: str) -> None:
        self.client = cluster.client(url)  # no retries: every answer is recorded as it came
        self.answers: dict[str, int] = {}  # client order id -> HTTP status (0: no answer at all)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OrderFlow:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            cid = f"flow-{n}"
            n += 1
            try:
                order = self.client.place_order(
                    "BTC-USD", "buy", "0.001", price="60000.00", client_order_id=cid
                )
                self.answers[cid] = 202 if order["status"] == "pending" else 201
            except ClientError as exc:
                self.answers[cid] = exc.status
            except httpx.HTTPError:
                self.answers[cid] = 0
            time.sleep(0.01)


def _place_each(client: ExchangeClient, client_order_ids: list[str]) -> dict[str, int]:
    """Each order's HTTP status, placed one after another."""
    answers = {}
    for cid in client_order_ids:
        try:
            client.place_order("BTC-USD", "buy", "0.001", price="60000.00", client_order_id=cid)
            answers[cid] = 201
        except ClientError as exc:
            answers[cid] = exc.status
    return answers


def _not_ready_within(url: str, guard_s: float) -> bool:
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/readyz", timeout=1).status_code == 503:
            return True
        time.sleep(0.05)
    return False


def _settled(cluster: GatewayCluster, broker: LocalBroker) -> list[str]:
    """The client order ids of every OrderAccepted on BTC-USD's partition once every command is answered.

    The test plays the matcher's supervisor only as far as a pod's restart policy would: a matcher
    that ended is started again. One ends on a fatal Kafka error, or when a commit begun as the
    broker died is never answered after it comes back (the client's send_offsets_to_transaction
    can wait for ever): it notices, exits, and its successor fences it.
    """
    deadline = time.monotonic() + SETTLE_GUARD_S
    while True:
        cluster.restart_dead_matchers()
        commands = len(read_records(broker.bootstrap, cluster.topics.orders, 0))
        replies = [r for p in (0, 1) for _, r in read_records(broker.bootstrap, cluster.topics.replies, p)]
        # Read after the replies: a reply's executions committed with it, so none is missed.
        executions = [r for _, r in read_records(broker.bootstrap, cluster.topics.executions, 0)]
        if len(replies) >= commands or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(replies) >= commands, "the matcher did not answer every command in time"
    return [
        event["client_order_id"]
        for report in executions
        for name, event in report["events"]
        if name == "exchange.OrderAccepted"
    ]


@pytest.fixture
def own_broker(tmp_path: Path) -> LocalBroker:
    settings: Settings = load_settings()
    broker = LocalBroker(
        port=free_port(),
        data_dir=tmp_path / "broker",
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
    )
    broker.start()
    yield broker  # type: ignore[misc]
    broker.stop()


def test_orders_through_a_broker_outage_are_executed_once_if_acknowledged_and_never_if_refused(
    own_broker: LocalBroker, tmp_path: Path
) -> None:
    prefix = "outage."
    topics = TopicNames.with_prefix(prefix)
    ensure_topics(admin_client(own_broker.bootstrap), topic_specs(topics, partitions=2, replies_partitions=2))
    (tmp_path / "symbols.yaml").write_text(REGISTRY_YAML)
    (tmp_path / "keys.yaml").write_text(KEYS_YAML)
    cluster = GatewayCluster(
        own_broker.bootstrap, prefix, topics, tmp_path / "symbols.yaml", tmp_path / "keys.yaml"
    )
    try:
        cluster.start_matcher(0)
        url = cluster.start_gateway(gateway_reply_wait_s=2.0, gateway_delivery_timeout_s=60.0)
        flow = OrderFlow(cluster, url).start()
        time.sleep(FLOW_BEFORE_KILL_S)

        assert own_broker._process is not None
        own_broker._process.kill()  # kill -9: no clean shutdown
        own_broker._process.wait()
        own_broker._process = None
        went_unready = _not_ready_within(url, 2.0)
        # Sent while the broker is down (the flow's own request may be waiting on the broker).
        while_down = _place_each(cluster.client(url), [f"down-{n}" for n in range(5)])
        time.sleep(DOWN_S)
        own_broker.start()
        time.sleep(FLOW_AFTER_RESTART_S)
        flow.stop()
        accepted = Counter(_settled(cluster, own_broker))
    finally:
        cluster.stop()

    answers = {**flow.answers, **while_down}
    acknowledged = [cid for cid, status in answers.items() if status in (201, 202)]
    refused = [cid for cid, status in answers.items() if status == 503]
    assert went_unready
    assert set(while_down.values()) == {503}, f"orders sent while the broker was down: {while_down}"
    lost = [(cid, answers[cid], accepted[cid]) for cid in acknowledged if accepted[cid] != 1]

    assert not lost, f"acknowledged orders lost or doubled: {lost}"
    assert all(accepted[cid] == 0 for cid in refused), "a refused order was executed"
    assert max(accepted.values()) == 1, "an order was executed twice"
