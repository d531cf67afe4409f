"""`exchange up` as a subprocess on the test broker: free ports, its printed lines, its demo key."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.signing import signed_headers
from runtime.symbols import load_registry

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_GUARD_S = 90.0
STDERR_FILE = "up.stderr.log"


@dataclass
class UpCluster:
    """A running `exchange up`: its process, what it printed until ready, and its ports."""

    process: subprocess.Popen[str]
    output: list[str]
    ops_base: int
    partitions: int

    @property
    def gateway_port(self) -> int:
        return self.ops_base + self.partitions

    @property
    def relay_port(self) -> int:
        return self.ops_base + self.partitions + 1

    @property
    def history_port(self) -> int:
        return self.ops_base + self.partitions + 2

    @property
    def ports(self) -> range:
        """The matchers', the gateway's, the relay's and the history service's ops ports."""
        return range(self.ops_base, self.ops_base + self.partitions + 3)

    def demo_secret(self) -> str:
        line = next(line for line in self.output if "demo API key" in line)
        return line.split("secret:")[1].split()[0]

    def wait_all_ready(self) -> bool:
        deadline = time.monotonic() + READY_GUARD_S
        while not all(ready(port) for port in self.ports) and time.monotonic() < deadline:
            time.sleep(0.2)
        return all(ready(port) for port in self.ports)


def history_get(port: int, secret: str, path: str) -> dict[str, Any] | None:
    """A signed GET of the demo account on the history API (no query); None while it cannot answer."""
    headers = signed_headers("demo", secret, timestamp_ms=int(time.time() * 1000), method="GET",
                             path=path, query="", body=b"")  # fmt: skip
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    found: dict[str, Any] = answer.json()
    return found if answer.status_code == 200 else None


def free_port_run(count: int) -> int:
    """A port P such that P .. P+count-1 are all free on loopback."""
    for base in range(20_000, 30_000, count):
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no run of free ports")


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
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


def up_process(
    bootstrap: str, topic_prefix: str, data_dir: Path, partitions: int | None = None, args: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], int, int]:
    """`exchange up ARGS` started on free ports (``--partitions`` when given): the process, its first
    port (the matchers' ops ports, then the gateway's, the relay's and history's) and its partitions."""
    count = partitions or load_registry(DEFAULT_SYMBOLS_FILE).partition_count
    ops_base = free_port_run(count + 3)
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": bootstrap,
        "EXCHANGE_TOPIC_PREFIX": topic_prefix,
        "EXCHANGE_DATA_DIR": str(data_dir),
        "EXCHANGE_UP_MATCHER_OPS_PORT": str(ops_base),
        "EXCHANGE_UP_GATEWAY_PORT": str(ops_base + count),
        "EXCHANGE_UP_RELAY_PORT": str(ops_base + count + 1),
        "EXCHANGE_UP_HISTORY_PORT": str(ops_base + count + 2),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    # Every service's log lines, kept for the test to read (a pipe nobody reads would stall them).
    with open(data_dir / STDERR_FILE, "a", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exchange",
                "up",
                *(["--partitions", str(partitions)] if partitions else []),
                *args,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    return process, ops_base, count


@contextmanager
def exchange_up(
    bootstrap: str, topic_prefix: str, data_dir: Path, *args: str, partitions: int | None = None
) -> Iterator[UpCluster]:
    """`exchange up ARGS` on the test broker under ``topic_prefix``, until it printed its summary.

    The caller stops it with SIGINT (and checks the exit code); it is killed if still running after.
    """
    process, ops_base, count = up_process(bootstrap, topic_prefix, data_dir, partitions, args)
    try:
        output = wait_for_line(process, "Ctrl-C stops it")
        yield UpCluster(process, output, ops_base, count)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
