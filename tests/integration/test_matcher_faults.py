"""The matcher survives what production does to it: kill -9 at any moment, and a zombie twin.

Its early replies (written the moment a command is applied, before the transaction commits)
are checked against the committed ones under the same kills.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.wireflow import WireCommand
from matcher.service import EXIT_FATAL
from matcher.verify import verify_partition
from tests.integration.conftest import (
    FlowCluster,
    MatcherProcess,
    flow_commands,
    generate_flow,
    read_records,
)

MakeCluster = Callable[..., FlowCluster]

KILLS = 20
EXIT_GUARD_S = 60.0
# Small transactions and frequent snapshots: a kill then lands inside a transaction, between
# transactions, or while a snapshot is written, and recovery really starts from snapshots.
FAULT_BATCH = 50
FAULT_ENV = {
    "EXCHANGE_MATCHER_BATCH_MAX_COMMANDS": str(FAULT_BATCH),
    "EXCHANGE_MATCHER_SNAPSHOT_EVERY_COMMANDS": "700",
}


def _assert_exactly_once(cluster: FlowCluster, commands: int) -> None:
    """One reply per command, one execution report per command that touched an order, verify clean."""
    replies = Counter(r["command_offset"] for r in cluster.replies())
    assert sorted(replies) == list(range(commands))
    assert max(replies.values()) == 1
    reports = Counter(
        r["command_offset"] for _, r in read_records(cluster.bootstrap, cluster.topics.executions)
    )
    assert reports and max(reports.values()) == 1
    report = verify_partition(
        cluster.bootstrap,
        cluster.topics,
        cluster.registry,
        0,
        group=f"{cluster.settings.topic_prefix}matcher-0",
    )
    assert report.mismatches == 0, report.examples
    assert report.commands == commands


def _feed(cluster: FlowCluster, commands: list[WireCommand], chunk: int = 250, pause_s: float = 0.9) -> None:
    """Load that keeps arriving while the matcher is killed and restarted (about 45 s)."""
    for start in range(0, len(commands), chunk):
        cluster.produce(commands[start : start + chunk])
        time.sleep(pause_s)


def _stop(matcher: MatcherProcess) -> int:
    matcher.process.send_signal(signal.SIGTERM)
    return matcher.process.wait(EXIT_GUARD_S)


def test_kill_9_twenty_times_under_load_loses_and_repeats_nothing(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 12_000, seed=21)
    cluster = make_cluster(["SYM000"])
    commands = flow_commands(rows)
    # Load keeps arriving while the matcher is killed and restarted.
    feeder = threading.Thread(
        target=lambda: [
            cluster.produce(commands[i : i + 200]) or time.sleep(0.15) for i in range(0, len(commands), 200)
        ]
    )
    feeder.start()
    moments = random.Random(2026)

    progress = []
    for _ in range(KILLS):
        victim = MatcherProcess(cluster, **FAULT_ENV).process
        time.sleep(moments.uniform(1.0, 3.0))
        victim.kill()  # SIGKILL: no clean-up of any kind
        victim.wait(EXIT_GUARD_S)
        # Committed replies so far (the committed offset itself waits for the dead transaction).
        progress.append(len(cluster.replies()))
    feeder.join()
    # The kills interrupted a matcher that was getting work done, not only ones still starting up.
    assert len(set(progress)) > KILLS // 3, progress
    survivor = MatcherProcess(cluster, **FAULT_ENV)
    survivor.wait_ready()
    cluster.wait_committed(0, len(rows))

    assert _stop(survivor) == 0
    _assert_exactly_once(cluster, len(rows))
    _assert_early_replies_equal_the_committed_ones(cluster, len(rows), lost_at_most=KILLS * FAULT_BATCH)


def _assert_early_replies_equal_the_committed_ones(
    cluster: FlowCluster, commands: int, lost_at_most: int
) -> None:
    """Every early copy of a reply is byte for byte the committed one, replayed copies included.

    A kill between a command's early reply and the commit of its transaction makes the next
    instance apply it again and answer it early again: such commands have several early copies,
    and the test needs some to prove it reached that moment. An early copy still queued when its
    matcher died after the commit is gone; the committed copy answers then (at most a batch a kill).
    """
    committed = dict(cluster.reply_copies(cluster.topics.replies))
    early = cluster.reply_copies(cluster.topics.replies_early)
    assert len(committed) == commands
    unequal = [request_id for request_id, value in early if committed.get(request_id) != value]
    assert unequal == []
    copies = Counter(request_id for request_id, _ in early)
    assert max(copies.values()) > 1  # some kills fell between an early reply and its commit
    lost = sorted(committed.keys() - copies.keys())
    assert len(lost) <= lost_at_most, lost[:20]


def test_a_zombie_matcher_is_fenced_and_leaves_no_duplicate(
    make_cluster: MakeCluster, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 3_000, seed=23)
    cluster = make_cluster(["SYM000"])
    commands = flow_commands(rows)
    cluster.produce(commands[:1_000])
    zombie = MatcherProcess(cluster, **FAULT_ENV)
    cluster.wait_committed(0, 1_000)

    zombie.process.send_signal(signal.SIGSTOP)
    cluster.produce(commands[1_000:2_000])  # the zombie has these to do when it wakes
    replacement = MatcherProcess(cluster, **FAULT_ENV)
    replacement.wait_ready()
    cluster.wait_committed(0, 2_000)
    zombie.process.send_signal(signal.SIGCONT)
    cluster.produce(commands[2_000:])
    zombie_exit = zombie.process.wait(EXIT_GUARD_S)
    cluster.wait_committed(0, len(rows))

    assert zombie_exit == EXIT_FATAL
    assert replacement.process.poll() is None  # the replacement goes on
    assert _stop(replacement) == 0
    _assert_exactly_once(cluster, len(rows))
    _assert_early_replies_equal_the_committed_ones(cluster, len(rows), lost_at_most=FAULT_BATCH)
