"""The local broker as a process: restarts keep data, stops are clean, no JVM outlives us.

These start brokers of their own (beside the session's), so they run only where this
machine starts brokers: not when ``EXCHANGE_KAFKA_BOOTSTRAP`` names an outside cluster.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.broker import LocalBroker, free_port
from runtime.errors import UserError
from runtime.kafka import IdempotentProducer, admin_client
from runtime.settings import Settings, load_settings
from runtime.topics import TopicSpec, ensure_topics
from tests.conftest import read_values

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Guards against a hang only.
GUARD_S = 60.0


@pytest.fixture
def settings() -> Settings:
    settings: Settings = load_settings()
    if settings.kafka_bootstrap:
        pytest.skip("EXCHANGE_KAFKA_BOOTSTRAP is set: this run starts no broker")
    return settings


def _broker(settings: Settings, data_dir: Path) -> LocalBroker:
    return LocalBroker(
        port=free_port(), data_dir=data_dir, cache_dir=settings.cache_dir, version=settings.kafka_version
    )


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pid: int) -> bool:
    guard = time.monotonic() + GUARD_S
    while _alive(pid) and time.monotonic() < guard:
        time.sleep(0.1)
    return not _alive(pid)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@dataclass
class KafkaCommand:
    process: subprocess.Popen[str]
    ready_line: str


@pytest.fixture
def kafka_command(settings: Settings, tmp_path: Path) -> Iterator[KafkaCommand]:
    """`exchange kafka` on a free port and a fresh data folder, once it has printed its ready line."""
    env = {**os.environ, "EXCHANGE_DATA_DIR": str(tmp_path), "EXCHANGE_KAFKA_PORT": str(free_port())}
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "kafka"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdout is not None
    ready_line = process.stdout.readline()
    if not ready_line:
        pytest.fail(f"`exchange kafka` did not start: {stderr.read_text()}")
    yield KafkaCommand(process, ready_line)
    if process.poll() is None:
        process.kill()
        process.wait()


def test_restarted_broker_keeps_its_topics_and_records(settings: Settings, tmp_path: Path) -> None:
    with _broker(settings, tmp_path) as first_run:
        ensure_topics(admin_client(first_run.bootstrap), [TopicSpec("kept", 1)])
        producer = IdempotentProducer(first_run.bootstrap, client_id="test")
        producer.produce("kept", b"survives a restart", partition=0)
        producer.close()

    with _broker(settings, tmp_path) as second_run:
        values = read_values(second_run.bootstrap, "kept")

    assert values == [b"survives a restart"]


def test_stopped_broker_leaves_no_process(settings: Settings, tmp_path: Path) -> None:
    broker = _broker(settings, tmp_path).start()
    pid = broker.pid
    assert pid is not None

    broker.stop()

    assert not _alive(pid)


def test_broker_that_dies_during_start_is_reported_with_its_log(settings: Settings, tmp_path: Path) -> None:
    storage = tmp_path / "kafka" / "storage"
    storage.mkdir(parents=True)
    (storage / "meta.properties").write_text("this is not a formatted Kafka storage\n")

    with pytest.raises(UserError, match=r"exited during start .*broker\.log") as raised:
        _broker(settings, tmp_path).start()

    assert "\n" not in str(raised.value)


def test_kafka_command_prints_its_start_to_ready_time(kafka_command: KafkaCommand) -> None:
    line = kafka_command.ready_line

    assert re.match(r"kafka \S+ ready at 127\.0\.0\.1:\d+ in \d+\.\d s \(data: ", line), line


def test_kafka_command_stops_the_broker_on_sigterm(kafka_command: KafkaCommand) -> None:
    command = kafka_command.process
    [jvm] = _children(command.pid)

    command.send_signal(signal.SIGTERM)
    returncode = command.wait(GUARD_S)
    rest = command.stdout.read() if command.stdout else ""

    assert returncode == 0
    assert rest.strip() == "kafka stopped"
    assert not _alive(jvm)


def test_broker_does_not_outlive_a_killed_parent(kafka_command: KafkaCommand) -> None:
    command = kafka_command.process
    [jvm] = _children(command.pid)

    command.kill()  # SIGKILL: Python gets no chance to stop the JVM itself
    command.wait()

    assert _wait_gone(jvm)
