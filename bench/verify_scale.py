"""`exchange bench verify-scale --orders N`: `exchange verify` on an N-command partition, its peak memory.

One run, one partition, one JSON line:

1. **Flow** (untimed): ``../shared/bench/orderflow.py --profile mixed --orders N --symbols 1``,
   or the CSV given with ``--flow``; every row becomes the `orders` record a gateway would
   produce (``bench.wireflow``), on partition 0 of topics under a fresh ``bench.<id>.`` prefix.
2. **Matcher**: ``exchange matcher --partition 0`` as a process, until it has committed every
   command; then it is stopped (SIGTERM).
3. **Verify**: ``matcher.verify`` run in a process of its own (``configure``/``run``, as
   ``exchange verify --partition 0`` does), timed, its peak resident memory taken from
   ``wait4``'s ``ru_maxrss``. With ``--compare-with OLD.py`` (another version of
   ``matcher/verify.py``, e.g. ``git show HEAD:matcher/verify.py > /tmp/old_verify.py``) that
   one runs the same way on the same topics.

The baseline is a process that imports the same verify module and exits (``--help``): what any
verify costs before it reads a record.

The broker is ``EXCHANGE_KAFKA_BOOTSTRAP``'s, else a local one started for the run (and stopped
after it). Topics and consumer groups the run created are deleted at the end. Progress is logged
on stderr; stdout has the JSON line only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from confluent_kafka import TopicPartition

from bench.pipeline import BenchCluster, bench_cluster, positive_int, produce_commands
from bench.recovery import stop_process
from bench.wireflow import read_flow, wire_command
from matcher.service import group_id
from runtime.broker import free_port, log_excerpt
from runtime.errors import UserError
from runtime.kafka import CommittedConsumer
from runtime.logs import configure_logging
from runtime.progress import Progress
from runtime.settings import Settings, load_settings

log = logging.getLogger("bench.verify_scale")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ORDERFLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"
PARTITION = 0
VERIFY_MODULE = "matcher.verify"
# Guards against a hang only: the matcher commits thousands of commands a second.
STALL_GUARD_S = 600.0
COMMITTED_POLL_S = 1.0
# A verify module (a dotted name, or a file) run as `exchange verify` runs it: configure, then run.
RUNNER = """
import argparse, importlib, importlib.util, sys
from runtime import native
native.install()  # as the exchange command does
source = sys.argv[1]
if source.endswith(".py"):
    spec = importlib.util.spec_from_file_location("verify_under_test", source)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    module = importlib.import_module(source)
parser = argparse.ArgumentParser(prog="exchange verify")
module.configure(parser)
sys.exit(module.run(parser.parse_args(sys.argv[2:])))
"""


class Measured(NamedTuple):
    """One process: its exit code, what it printed, its wall seconds and peak resident memory."""

    exit_code: int
    stdout: str
    seconds: float
    peak_rss_mb: float


def measure(command: list[str], env: dict[str, str], log_file: Path) -> Measured:
    """Run ``command`` to its end; its peak RSS is the kernel's ``ru_maxrss`` of that one child."""
    with open(log_file, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        # wait4, not Popen.wait: the rusage of this child alone (RUSAGE_CHILDREN would add the matcher's).
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(process.returncode, stdout, seconds, usage.ru_maxrss / 1024)  # KiB on Linux


def run_verify(source: str, cluster: BenchCluster, log_file: Path) -> dict[str, Any]:
    """``source``'s verify of partition 0, measured; its JSON report with the measurements."""
    result = measure(
        [sys.executable, "-c", RUNNER, source, "--partition", str(PARTITION)], _env(cluster), log_file
    )
    lines = result.stdout.strip().splitlines()
    if result.exit_code not in (0, 1) or not lines:
        raise UserError(f"verify ({source}) exited with code {result.exit_code}: {log_excerpt(log_file)}")
    report = json.loads(lines[-1])
    return {
        "source": source,
        "seconds": round(result.seconds, 1),
        "peak_rss_mb": round(result.peak_rss_mb, 1),
        "commands": report["commands"],
        "outputs_compared": report["outputs_compared"],
        "mismatches": report["mismatches"],
        "first_mismatches": report["first_mismatches"],
        "state_sha256": report["state_sha256"],
    }


def idle_rss_mb(source: str, cluster: BenchCluster, log_file: Path) -> float:
    """The peak RSS of a process that imports ``source`` and exits: the floor under any verify."""
    result = measure([sys.executable, "-c", RUNNER, source, "--help"], _env(cluster), log_file)
    return round(result.peak_rss_mb, 1)


def _env(cluster: BenchCluster) -> dict[str, str]:
    return {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": cluster.bootstrap,
        "EXCHANGE_TOPIC_PREFIX": cluster.prefix,
        "EXCHANGE_SYMBOLS_FILE": str(cluster.registry_file),
    }


# --- the partition ----------------------------------------------------------------------------------


def flow_file(args: argparse.Namespace, workdir: Path) -> Path:
    """The flow CSV: ``--flow``, else one made by orderflow.py with ``--orders`` rows."""
    if args.flow is not None:
        return Path(args.flow)
    path = workdir / "flow.csv"
    subprocess.run(
        [sys.executable, str(ORDERFLOW), "--profile", "mixed", "--orders", str(args.orders),
         "--symbols", "1", "--seed", str(args.seed), "-o", str(path)],
        check=True,
    )  # fmt: skip
    return path


def match(cluster: BenchCluster, commands: int, log_file: Path) -> float:
    """Run ``exchange matcher --partition 0`` until it has committed ``commands``; its seconds."""
    env = {**_env(cluster), "EXCHANGE_MATCHER_OPS_PORT": str(free_port())}
    command = [sys.executable, "-m", "exchange", "matcher", "--partition", str(PARTITION)]
    group = group_id(cluster.prefix, PARTITION)
    cluster.groups.append(group)
    reader = CommittedConsumer(cluster.bootstrap, group_id=group, client_id="bench-offsets")
    progress = Progress("bench verify_scale: matcher", commands)
    with open(log_file, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            committed, moved_at = 0, time.monotonic()
            while committed < commands:
                time.sleep(COMMITTED_POLL_S)
                now = reader.committed([TopicPartition(cluster.topics.orders, PARTITION)])
                offset = now[(cluster.topics.orders, PARTITION)] or 0
                if offset > committed:
                    committed, moved_at = offset, time.monotonic()
                    progress.reached(committed)
                if process.poll() is not None:
                    raise UserError(
                        f"the matcher exited with code {process.returncode}: {log_excerpt(log_file)}"
                    )
                if time.monotonic() - moved_at > STALL_GUARD_S:
                    raise UserError(f"the matcher stalled at offset {committed} of {commands}")
            return time.perf_counter() - started
        finally:
            reader.close()
            stop_process(process)


# --- the command ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orders", type=positive_int, default=200_000, help="rows of the generated flow")
    parser.add_argument("--flow", help="an orderflow.py CSV of one symbol to use instead of generating one")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated flow")
    parser.add_argument(
        "--compare-with",
        metavar="VERIFY.py",
        help="another version of matcher/verify.py to run the same way on the same topics",
    )


def run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as tmp:
        workdir = Path(tmp)
        flow = flow_file(args, workdir)
        symbols = sorted({row.symbol for row in read_flow(flow)})
        if len(symbols) != 1:
            raise UserError(f"the flow has {len(symbols)} symbols; this bench matches one partition of one")
        with bench_cluster(settings, symbols, workdir) as cluster:
            log.info("writing the log", extra={"flow": str(flow), "prefix": cluster.prefix})
            commands = produce_commands(
                cluster.bootstrap, cluster.topics.orders, map(wire_command, read_flow(flow))
            )
            log.info("matching", extra={"commands": commands})
            matcher_s = match(cluster, commands, workdir / "matcher.log")
            results: dict[str, Any] = {"commands": commands, "matcher_s": round(matcher_s, 1)}
            results["idle_rss_mb"] = idle_rss_mb(VERIFY_MODULE, cluster, workdir / "idle.log")
            if args.compare_with:
                log.info("verifying (compared version)", extra={"source": args.compare_with})
                results["compared_verify"] = run_verify(args.compare_with, cluster, workdir / "old.log")
            log.info("verifying")
            results["verify"] = run_verify(VERIFY_MODULE, cluster, workdir / "verify.log")
    results["notes"] = (
        "verify.*: one `exchange verify --partition 0` process (configure/run of the module) over the "
        "whole partition from offset 0; seconds: wall clock of the process; peak_rss_mb: its ru_maxrss "
        "(wait4). idle_rss_mb (the baseline): the same runner importing matcher.verify and exiting. "
        "Matcher and verify ran one after the other on one broker; machine shared"
    )
    print(json.dumps(results))
    return 0
