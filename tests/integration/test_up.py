"""`exchange up` on an existing cluster: creates the topics, says where Kafka is, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from runtime.topics import TopicNames

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_GUARD_S = 60.0


def _wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + READY_GUARD_S
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never printed; output: {''.join(seen)}")


def test_up_creates_topics_on_the_given_cluster_and_stops_on_ctrl_c(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str
) -> None:
    env = {**os.environ, "EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap, "EXCHANGE_TOPIC_PREFIX": topic_prefix}
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange", "up"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        output = _wait_for_line(process, "kafka bootstrap:")
        existing = set(kafka_admin.list_topics(timeout=10).topics)

        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert any(kafka_bootstrap in line for line in output)
    assert set(TopicNames.with_prefix(topic_prefix).all()) <= existing
    assert exit_code == 0
