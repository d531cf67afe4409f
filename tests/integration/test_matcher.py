"""The matcher on a real broker: exactly-once outputs, verify-by-replay, recovery, dead letters, aborts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from matcher.recovery import StateSnapshot, latest_snapshot
from matcher.verify import Report, verify_partition
from runtime.kafka import IdempotentProducer
from schemas import default_codec, encode
from tests.integration.conftest import (
    FlowCluster,
    RunningMatcher,
    flow_commands,
    generate_flow,
    read_raw,
    read_records,
)

MakeCluster = Callable[..., FlowCluster]
StartMatcher = Callable[..., RunningMatcher]


def _verify(cluster: FlowCluster, partition: int = 0, from_snapshot: bool = False) -> Report:
    return verify_partition(
        cluster.bootstrap,
        cluster.topics,
        cluster.registry,
        partition,
        group=f"{cluster.settings.topic_prefix}matcher-{partition}",
        from_snapshot=from_snapshot,
    )


def _latest_snapshot(cluster: FlowCluster, partition: int = 0) -> StateSnapshot | None:
    return latest_snapshot(cluster.bootstrap, cluster.topics.state_snapshots, partition, default_codec())


def _match(cluster: FlowCluster, start_matcher: StartMatcher, end: int, **settings: object) -> RunningMatcher:
    """Run a matcher until it has committed everything below ``end``, then stop it."""
    matcher = start_matcher(cluster, **settings)
    cluster.wait_committed(0, end)
    assert matcher.stop() == 0
    return matcher


def test_a_matched_flow_verifies_with_zero_mismatches(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 3_000, seed=11)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))

    _match(cluster, start_matcher, len(rows))
    report = _verify(cluster)

    assert report.mismatches == 0, report.examples
    assert report.commands == len(rows)
    assert report.outputs_compared > len(rows)  # a reply per command, plus executions and book updates


def test_every_command_gets_exactly_one_reply(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "cancel-heavy", 1_500, seed=3)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))

    _match(cluster, start_matcher, len(rows))

    replies = cluster.replies()
    assert sorted(r["command_offset"] for r in replies) == list(range(len(rows)))
    assert {r["request_id"] for r in replies} == {f"req-{row.seq}" for row in rows}


def test_verify_finds_a_tampered_output(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 300, seed=5)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))
    _match(cluster, start_matcher, len(rows))
    # An extra execution report that no command produced: the audit must notice it.
    name, record = read_records(cluster.bootstrap, cluster.topics.executions)[0]
    value, headers = encode(name, record)
    producer = IdempotentProducer(cluster.bootstrap, client_id="tamper")
    producer.produce(cluster.topics.executions, value, key=b"SYM000", partition=0, headers=headers)
    producer.close()

    report = _verify(cluster)

    assert report.mismatches >= 1


def test_undecodable_command_goes_to_the_dead_letter_topic_and_matching_continues(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 200, seed=7)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows[:100]))
    cluster.produce_raw(0, b"\xff\x00garbage", [("schema", b"NewOrder"), ("schema-version", b"1")])
    cluster.produce(flow_commands(rows[100:]))

    _match(cluster, start_matcher, len(rows) + 1)

    dead = read_records(cluster.bootstrap, cluster.topics.orders_dlq)
    assert [(name, r["source_offset"]) for name, r in dead] == [("DeadLetter", 100)]
    assert dead[0][1]["value"] == b"\xff\x00garbage"
    assert dead[0][1]["reason"] == "UNDECODABLE"
    # Every real command, before and after the garbage, was answered.
    assert len(cluster.replies()) == len(rows)
    assert _verify(cluster).mismatches == 0


def test_recovery_from_snapshot_and_replay_reaches_the_uninterrupted_state(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 2_000, seed=9)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows[:1_500]))
    _match(cluster, start_matcher, 1_500, matcher_snapshot_every_commands=400)
    cluster.produce(flow_commands(rows[1_500:]))

    resumed = _match(cluster, start_matcher, len(rows), matcher_snapshot_every_commands=400)
    uninterrupted = _verify(cluster)

    assert resumed.matcher.metrics.replayed_commands._value.get() < 400  # recovery used a snapshot
    assert resumed.matcher.processor.engine.state_hash() == uninterrupted.state_sha256
    assert uninterrupted.mismatches == 0
    assert _verify(cluster, from_snapshot=True).state_sha256 == uninterrupted.state_sha256


def test_injected_aborts_leave_outputs_identical_to_a_clean_run(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 2_000, seed=13)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))

    matcher = _match(
        cluster, start_matcher, len(rows), matcher_fault_abort_one_in=50, matcher_batch_max_commands=20
    )

    assert matcher.matcher.metrics.aborts._value.get() >= 1
    assert matcher.matcher.background_commits >= 1  # batches filled: the overlapped commit path ran
    assert _verify(cluster).mismatches == 0  # identical, byte for byte, to what a clean replay produces
    outputs = read_raw(cluster.bootstrap, cluster.topics.executions)
    assert len(outputs) == len(set(outputs))  # nothing of an aborted transaction shows twice


def test_a_backlog_is_committed_in_full_batches_each_while_the_next_is_matched(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 2_000, seed=5)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))

    # Only a full batch or the partition's end may close a batch: the wait never runs out here.
    running = start_matcher(cluster, matcher_batch_max_commands=200, matcher_batch_max_ms=600_000)
    cluster.wait_committed(0, len(rows))
    transactions, in_background = running.matcher.transactions, running.matcher.background_commits
    assert running.stop() == 0

    assert transactions == len(rows) // 200
    assert in_background == transactions
    assert _verify(cluster).mismatches == 0


def test_a_lone_command_is_committed_at_once_when_nothing_more_is_waiting(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 1, seed=5)
    cluster = make_cluster(["SYM000"])
    start_matcher(cluster, matcher_batch_max_commands=200, matcher_batch_max_ms=600_000)

    cluster.produce(flow_commands(rows))

    # Waiting for the batch to fill, or for its ten minutes, would miss this guard.
    cluster.wait_committed(0, 1, guard_s=60)
    assert [r["command_offset"] for r in cluster.replies()] == [0]


def test_a_snapshot_finished_after_the_last_batch_is_committed_while_the_partition_is_quiet(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 400, seed=5)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))

    # The snapshot is taken with the last batch, so no later batch exists to carry it.
    start_matcher(cluster, matcher_batch_max_commands=200, matcher_snapshot_every_commands=400)
    cluster.wait_committed(0, len(rows))

    deadline = time.monotonic() + 60
    while (snapshot := _latest_snapshot(cluster)) is None or snapshot.orders_offset < len(rows):
        assert time.monotonic() < deadline, "the state snapshot was never committed"
        time.sleep(0.2)
    assert cluster.committed(0) == len(rows)


def test_a_clean_stop_leaves_a_snapshot_at_the_committed_offset_so_a_restart_replays_nothing(
    make_cluster: MakeCluster, start_matcher: StartMatcher, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 1_000, seed=8)
    cluster = make_cluster(["SYM000"])
    cluster.produce(flow_commands(rows))
    stopped = _match(cluster, start_matcher, len(rows))  # no snapshot is due by count or time

    restarted = start_matcher(cluster)
    cluster.wait_committed(0, len(rows))
    while not restarted.matcher.health.readiness()[0]:
        time.sleep(0.1)

    snapshot = _latest_snapshot(cluster)
    assert snapshot is not None and snapshot.orders_offset == len(rows)
    assert restarted.matcher.metrics.replayed_commands._value.get() == 0
    assert restarted.matcher.processor.engine.state_hash() == stopped.matcher.processor.engine.state_hash()
