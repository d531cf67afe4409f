"""`exchange topics create` on a real broker: every topic of DESIGN.md, idempotent, grown, refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from runtime.broker import free_port
from runtime.errors import UserError
from runtime.topics import (
    EARLY_REPLIES_RETENTION,
    TopicNames,
    TopicSpec,
    ensure_topics,
    read_topics,
    topic_specs,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _specs(prefix: str, partitions: int = 3) -> list[TopicSpec]:
    return topic_specs(TopicNames.with_prefix(prefix), partitions=partitions, replies_partitions=2)


def _exchange(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_second_ensure_changes_nothing_and_says_so(kafka_admin: AdminClient, topic_prefix: str) -> None:
    specs = _specs(topic_prefix)

    first = ensure_topics(kafka_admin, specs)
    second = ensure_topics(kafka_admin, specs)

    assert all(change.create for change in first)
    assert [str(change) for change in second] == [f"{spec.name}: no change" for spec in specs]


def test_created_topics_have_registry_partitions_and_their_settings(
    kafka_admin: AdminClient, topic_prefix: str
) -> None:
    names = TopicNames.with_prefix(topic_prefix)

    ensure_topics(kafka_admin, _specs(topic_prefix, partitions=3))
    partitions, configs = read_topics(kafka_admin, _specs(topic_prefix))

    assert partitions == {
        names.orders: 3,
        names.replies: 2,
        names.replies_early: 2,
        names.executions: 3,
        names.book: 3,
        names.book_snapshots: 3,
        names.state_snapshots: 3,
        names.orders_dlq: 3,
        names.symbols: 3,
    }
    assert configs[names.book_snapshots]["cleanup.policy"] == "compact"
    assert configs[names.symbols]["cleanup.policy"] == "compact"
    assert configs[names.state_snapshots]["cleanup.policy"] == "compact"
    assert configs[names.orders]["cleanup.policy"] == "delete"
    assert configs[names.orders]["retention.ms"] == "-1"
    assert configs[names.replies_early]["retention.ms"] == EARLY_REPLIES_RETENTION["retention.ms"]


def test_topic_with_fewer_partitions_is_grown(kafka_admin: AdminClient, topic_prefix: str) -> None:
    name = f"{topic_prefix}orders"
    ensure_topics(kafka_admin, [TopicSpec(name, 2)])

    [change] = ensure_topics(kafka_admin, [TopicSpec(name, 4)])
    partitions, _ = read_topics(kafka_admin, [TopicSpec(name, 4)])

    assert str(change) == f"{name}: grown from 2 to 4 partitions"
    assert partitions[name] == 4


def test_topic_with_more_partitions_is_refused(kafka_admin: AdminClient, topic_prefix: str) -> None:
    name = f"{topic_prefix}orders"
    ensure_topics(kafka_admin, [TopicSpec(name, 4)])

    with pytest.raises(UserError, match=f"{name} has 4 partitions, 2 wanted"):
        ensure_topics(kafka_admin, [TopicSpec(name, 2)])


def test_topic_with_other_settings_is_reconfigured(kafka_admin: AdminClient, topic_prefix: str) -> None:
    name = f"{topic_prefix}book-snapshots"
    ensure_topics(kafka_admin, [TopicSpec(name, 1)])

    [change] = ensure_topics(kafka_admin, [TopicSpec(name, 1, {"cleanup.policy": "compact"})])
    _, configs = read_topics(kafka_admin, [TopicSpec(name, 1)])

    assert str(change) == f"{name}: config set cleanup.policy=compact"
    assert configs[name]["cleanup.policy"] == "compact"


def test_topics_command_creates_every_topic_then_reports_no_change(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    env = {"EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap, "EXCHANGE_TOPIC_PREFIX": topic_prefix}
    names = TopicNames.with_prefix(topic_prefix).all()

    first = _exchange("topics", "create", env=env)
    second = _exchange("topics", "create", env=env)
    described = _exchange("topics", "describe", env=env)

    assert first.returncode == 0, first.stderr
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == names
    assert all(": created with " in line for line in first.stdout.splitlines())
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [f"{name}: no change" for name in names]
    assert described.returncode == 0, described.stderr
    rows = described.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == names
    assert "missing" not in described.stdout


def test_topics_command_without_a_cluster_says_so_on_one_line() -> None:
    env = {"EXCHANGE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "EXCHANGE_LOG_LEVEL": "ERROR"}

    done = _exchange("topics", "describe", env=env)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("exchange topics: error: no Kafka cluster answers")
