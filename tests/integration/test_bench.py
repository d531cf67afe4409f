"""`exchange bench pipeline`, `recovery` and `relay` on tiny inputs: one JSON line of sane figures.

Smoke tests only: each bench runs once per module against the session broker, and the tests
check what the line says, never how fast anything was.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from confluent_kafka.admin import AdminClient

from bench.pipeline import EARLY_PHASE, PHASES
from exchange.cli import main
from tests.integration.conftest import generate_flow

FLOW_ROWS = 400
E2E_COMMANDS = 40
BATCH = 100  # commands per transaction: several transactions even for a tiny flow
RESTING = 2_000
RELAY_CLIENTS = 12
RELAY_KEYS = {"clients", "updates_per_s", "msgs_per_s", "p50_ms", "p99_ms", "baseline_p99_ms", "dropped"}


class BenchRun(NamedTuple):
    """What one `exchange bench ...` printed on stdout, and the topics it left behind."""

    exit_code: int
    lines: list[str]
    new_topics: set[str]

    @property
    def result(self) -> dict[str, Any]:
        return dict(json.loads(self.lines[0]))


def run_bench(argv: list[str], bootstrap: str, admin: AdminClient, **env_vars: str) -> BenchRun:
    """Run `exchange bench` in this process against ``bootstrap``; its stdout and the topics it added."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the bench configures logging for its process
    before = set(admin.list_topics(timeout=10).topics)
    out = io.StringIO()
    try:
        with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
            env.setenv("EXCHANGE_KAFKA_BOOTSTRAP", bootstrap)
            env.setenv("EXCHANGE_LOG_FORMAT", "text")
            for name, value in env_vars.items():
                env.setenv(name, value)
            exit_code = main(["bench", *argv])
    finally:
        root.handlers[:], root.level = handlers, level
    after = set(admin.list_topics(timeout=10).topics)
    # Kafka makes its internal topics (__consumer_offsets, ...) on first use: not the bench's.
    added = {name for name in after - before if not name.startswith("__")}
    return BenchRun(exit_code, out.getvalue().splitlines(), added)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def pipeline_run(kafka_bootstrap: str, kafka_admin: AdminClient, bench_dir: Path) -> BenchRun:
    flow = bench_dir / "flow.csv"
    generate_flow(flow, "mixed", FLOW_ROWS, seed=4)
    argv = [
        "pipeline",
        *("--flow", str(flow)),
        *("--plot", str(flow.with_suffix(".png"))),
        *("--e2e-commands", str(E2E_COMMANDS), "--e2e-rate", "200"),
        *("--warm-up-s", "0.1"),  # one short round
    ]
    return run_bench(argv, kafka_bootstrap, kafka_admin, EXCHANGE_MATCHER_BATCH_MAX_COMMANDS=str(BATCH))


@pytest.fixture(scope="module")
def recovery_run(kafka_bootstrap: str, kafka_admin: AdminClient) -> BenchRun:
    return run_bench(["recovery", "--resting", str(RESTING)], kafka_bootstrap, kafka_admin)


@pytest.fixture(scope="module")
def relay_run(kafka_bootstrap: str, kafka_admin: AdminClient, bench_dir: Path) -> BenchRun:
    flow = bench_dir / "relay-flow.csv"
    generate_flow(flow, "mixed", FLOW_ROWS, seed=5)
    argv = [
        "relay",
        *("--clients", str(RELAY_CLIENTS), "--seconds", "2", "--rate", "40"),
        *("--flow", str(flow), "--preload", "200", "--client-processes", "2"),
        *("--warmup", "1", "--relay-workers", "2"),
    ]
    return run_bench(argv, kafka_bootstrap, kafka_admin)


def test_pipeline_bench_prints_one_json_line_with_the_issue_keys(pipeline_run: BenchRun) -> None:
    assert pipeline_run.exit_code == 0
    assert len(pipeline_run.lines) == 1
    expected = {"commands", "commands_per_s", "passthrough_per_s", "ratio", "e2e_p50_ms", "e2e_p99_ms"}
    assert expected <= pipeline_run.result.keys()


def test_pipeline_bench_counts_every_command_of_the_flow_and_of_the_paced_phase(
    pipeline_run: BenchRun,
) -> None:
    result = pipeline_run.result

    assert result["commands"] == FLOW_ROWS
    assert result["e2e_commands"] == E2E_COMMANDS
    assert result["partitions"] == 1


def test_pipeline_bench_batches_both_loops_by_the_matchers_batch_size(pipeline_run: BenchRun) -> None:
    result = pipeline_run.result

    assert result["batch_max_commands"] == BATCH
    assert result["passthrough_transactions"] >= FLOW_ROWS // BATCH
    assert result["matcher_transactions"] >= FLOW_ROWS // BATCH


def test_pipeline_bench_rates_are_positive_and_the_ratio_is_theirs(pipeline_run: BenchRun) -> None:
    result = pipeline_run.result

    assert result["commands_per_s"] > 0
    assert result["passthrough_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["commands_per_s"] / result["passthrough_per_s"], rel=0.01)


def test_pipeline_bench_latency_percentiles_are_ordered(pipeline_run: BenchRun) -> None:
    result = pipeline_run.result

    assert 0 < result["e2e_p50_ms"] <= result["e2e_p99_ms"] <= result["e2e_p999_ms"] <= result["e2e_max_ms"]
    assert 0 < result["passthrough_e2e_p50_ms"] <= result["passthrough_e2e_p99_ms"]
    assert 0 < result["committed_e2e_p50_ms"] <= result["committed_e2e_p99_ms"]


def test_pipeline_bench_names_the_phase_of_every_paced_commands_latency(pipeline_run: BenchRun) -> None:
    phases = pipeline_run.result["phases_ms"]

    assert list(phases) == [*PHASES, EARLY_PHASE]
    assert all(0 <= phase["p50"] <= phase["p99"] for phase in phases.values()), phases


def test_pipeline_bench_draws_its_plot(pipeline_run: BenchRun, bench_dir: Path) -> None:
    assert pipeline_run.exit_code == 0
    assert (bench_dir / "flow.png").read_bytes().startswith(b"\x89PNG")


def test_pipeline_bench_deletes_the_topics_it_created(pipeline_run: BenchRun) -> None:
    assert pipeline_run.new_topics == set()


def test_recovery_bench_prints_one_json_line_with_the_issue_keys(recovery_run: BenchRun) -> None:
    assert recovery_run.exit_code == 0
    assert len(recovery_run.lines) == 1
    assert {"resting", "snapshot_bytes", "recovery_s"} <= recovery_run.result.keys()


def test_recovery_bench_replays_ten_percent_of_the_resting_orders_after_the_snapshot(
    recovery_run: BenchRun,
) -> None:
    result = recovery_run.result

    assert result["resting"] == RESTING
    assert result["replayed"] == RESTING // 10


def test_recovery_bench_snapshot_holds_every_resting_order(recovery_run: BenchRun) -> None:
    result = recovery_run.result

    # An order's ids, account, price and quantity take well over ten bytes in any encoding.
    assert result["snapshot_bytes"] > 10 * RESTING
    assert result["snapshot_over_limit"] is False


def test_recovery_bench_time_to_ready_includes_the_matchers_own_recovery(recovery_run: BenchRun) -> None:
    result = recovery_run.result

    assert 0 < result["matcher_recovery_s"] < result["recovery_s"]


def test_recovery_bench_deletes_the_topics_it_created(recovery_run: BenchRun) -> None:
    assert recovery_run.new_topics == set()


def test_relay_bench_prints_one_json_line_with_the_issue_keys(relay_run: BenchRun) -> None:
    assert relay_run.exit_code == 0
    assert len(relay_run.lines) == 1
    assert relay_run.result.keys() >= RELAY_KEYS
    assert relay_run.result["clients"] == RELAY_CLIENTS
    assert "client_processes" in relay_run.result["notes"]


def test_relay_bench_clients_receive_the_book_deltas_of_the_flowing_orders(relay_run: BenchRun) -> None:
    result = relay_run.result

    assert result["updates_per_s"] > 0
    assert result["msgs_per_s"] >= result["updates_per_s"] * RELAY_CLIENTS
    assert result["deltas_unmatched"] == 0  # every delta a client got names a command read from `book`
    assert (result["dropped"], result["resyncs"]) == (0, 0)


def test_relay_bench_runs_the_relay_with_workers_and_counts_their_cpu(relay_run: BenchRun) -> None:
    result = relay_run.result

    assert (result["relay_workers"], result["warmup"]) == (2, 1)
    assert result["relay_cpu_percent"] > 0  # the supervisor itself only waits: the workers' CPU counted


def test_relay_bench_latency_percentiles_are_ordered_for_relay_and_baseline(relay_run: BenchRun) -> None:
    result = relay_run.result

    assert 0 <= result["p50_ms"] <= result["p99_ms"] <= result["e2e_p99_ms"]
    assert 0 <= result["baseline_p50_ms"] <= result["baseline_p99_ms"]


def test_relay_bench_feeds_the_baseline_the_deltas_a_relay_client_received(relay_run: BenchRun) -> None:
    result = relay_run.result

    assert result["deltas_fed_to_baseline"] > 0
    assert result["baseline_msgs_per_s"] > 0
    assert result["baseline_dropped"] == 0


def test_relay_bench_deletes_the_topics_it_created(relay_run: BenchRun) -> None:
    assert relay_run.new_topics == set()
