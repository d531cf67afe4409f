"""`exchange verify` on a real broker: streams shared between partitions, and a log that lost commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from exchange.cli import main
from matcher.recovery import RecoveryError
from matcher.verify import Report, verify_partition
from tests.integration.conftest import FlowCluster, RunningMatcher, flow_commands, generate_flow

MakeCluster = Callable[..., FlowCluster]
StartMatcher = Callable[..., RunningMatcher]
ADMIN_TIMEOUT_S = 30.0


def _verify(cluster: FlowCluster, partition: int = 0) -> Report:
    return verify_partition(
        cluster.bootstrap,
        cluster.topics,
        cluster.registry,
        partition,
        group=f"{cluster.settings.topic_prefix}matcher-{partition}",
    )


def _matched(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path, symbols: int, orders: int
) -> tuple[FlowCluster, dict[int, int]]:
    """A flow over ``symbols`` symbols, one partition each, matched; the commands of each partition."""
    rows = generate_flow(tmp_path / "flow.csv", "mixed", orders, symbols=symbols, seed=21)
    cluster = make_cluster([f"SYM{index:03d}" for index in range(symbols)], partitions=symbols)
    cluster.produce(flow_commands(rows))
    commands = {p: sum(1 for row in rows if cluster.partition_of(row.symbol) == p) for p in range(symbols)}
    running = [start_matcher(cluster, partition) for partition in range(symbols)]
    for partition, count in commands.items():
        cluster.wait_committed(partition, count)
    for matcher in running:
        assert matcher.stop() == 0
    return cluster, commands


def test_each_partition_verifies_alone_though_their_replies_share_a_partition(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    # Every command asks for its reply on replies partition 0: each audit skips the other's.
    cluster, commands = _matched(make_cluster, start_matcher, tmp_path, symbols=2, orders=1_500)

    reports = [_verify(cluster, partition) for partition in (0, 1)]

    assert [(r.mismatches, r.commands) for r in reports] == [(0, commands[0]), (0, commands[1])]
    assert all(r.outputs_compared > r.commands for r in reports)


def test_a_log_that_lost_committed_commands_is_refused_naming_the_offsets(
    make_cluster: MakeCluster,
    start_matcher: StartMatcher,
    kafka_admin: AdminClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster, _ = _matched(make_cluster, start_matcher, tmp_path, symbols=1, orders=300)
    [deleted] = kafka_admin.delete_records([TopicPartition(cluster.topics.orders, 0, 100)]).values()
    deleted.result(ADMIN_TIMEOUT_S)

    with pytest.raises(RecoveryError, match=r"starts at offset 100, .* offsets 0\.\.99 were deleted"):
        _verify(cluster)
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    assert main(["verify", "--partition", "0"]) == 2
    assert "offsets 0..99 were deleted" in capsys.readouterr().err
