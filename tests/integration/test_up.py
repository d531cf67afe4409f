"""`exchange up` on an existing cluster: topics, one ready matcher per partition, a gateway taking orders with
the demo key it printed, a ready relay, and Ctrl-C stops it all."""

from __future__ import annotations

import signal
from pathlib import Path

from confluent_kafka.admin import AdminClient

from exchange.client import ExchangeClient
from runtime.topics import TopicNames
from tests.integration.up_fixtures import exchange_up, ready


def test_up_runs_a_ready_matcher_per_partition_and_a_gateway_and_stops_everything_on_ctrl_c(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> None:
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path) as up:
        existing = set(kafka_admin.list_topics(timeout=10).topics)
        all_ready = up.wait_all_ready()
        with ExchangeClient(f"http://127.0.0.1:{up.gateway_port}", "demo", up.demo_secret()) as demo:
            order = demo.place_order("BTC-USD", "buy", "0.001", price="60000.00")

        up.process.send_signal(signal.SIGINT)
        exit_code = up.process.wait(timeout=60)

    assert any(kafka_bootstrap in line for line in up.output)
    assert set(TopicNames.with_prefix(topic_prefix).all()) <= existing
    assert all_ready
    assert order["status"] == "NEW"
    assert exit_code == 0
    assert not any(ready(port) for port in up.ports)  # no service outlives `exchange up`
