"""`exchange demo` on the real broker: a book with both sides and trades, the same commands for the
same seed, nothing left resting after Ctrl-C, and a gateway restart lived through."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.client import ExchangeClient
from runtime.broker import free_port
from tests.integration.conftest import read_records
from tests.integration.gateway_fixtures import PROJECT_ROOT, GatewayCluster, secret_of, wait_ready

SYMBOLS = ("BTC-USD", "ETH-USD")
GUARD_S = 60.0
STOP_GUARD_S = 60


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start(cluster, url, *args)``: `exchange demo` with alice as the maker and bob as the takers."""
    started: list[subprocess.Popen[str]] = []

    def start(cluster: GatewayCluster, url: str, *args: str) -> subprocess.Popen[str]:
        env = cluster.env(
            EXCHANGE_GATEWAY_URL=url,
            EXCHANGE_DATA_DIR=str(tmp_path / "data"),
            EXCHANGE_API_KEY="alice",
            EXCHANGE_API_SECRET=secret_of("alice"),
            EXCHANGE_DEMO_TAKER_KEY="bob",
            EXCHANGE_DEMO_TAKER_SECRET=secret_of("bob"),
            EXCHANGE_LOG_FORMAT="json",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "demo", *args],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {what}")
        time.sleep(0.2)


def _both_sides(client: ExchangeClient) -> bool:
    return all(book["bids"] and book["asks"] for book in (client.book(symbol) for symbol in SYMBOLS))


def _trades(cluster: GatewayCluster) -> int:
    return sum(
        1
        for partition in (0, 1)
        for _, record in read_records(cluster.bootstrap, cluster.topics.book, partition)
        for name, _event in record["events"]
        if name.endswith("Trade")
    )


def _stop(process: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]]]:
    """Ctrl-C the demo; its exit code and its log lines."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=STOP_GUARD_S)
    return process.returncode, [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _open_orders(cluster: GatewayCluster, url: str) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    for key in ("alice", "bob"):
        with cluster.client(url, key) as client:
            orders += [order for symbol in SYMBOLS for order in client.open_orders(symbol)]
    return orders


def test_the_demo_quotes_both_sides_trades_and_leaves_nothing_resting_after_ctrl_c(
    running: Callable[..., tuple[GatewayCluster, str]],
    start_demo: Callable[..., subprocess.Popen[str]],
) -> None:
    cluster, url = running()
    demo = start_demo(cluster, url, "--rate", "25", "--seed", "3")

    with cluster.client(url, "viewer") as viewer:
        _wait_for("both sides of both books", lambda: _both_sides(viewer))
    _wait_for("a trade", lambda: _trades(cluster) > 0)
    resting_while_running = _open_orders(cluster, url)
    exit_code, logs = _stop(demo)

    assert resting_while_running
    assert exit_code == 0
    assert _open_orders(cluster, url) == []
    stopped = next(line for line in logs if line["msg"] == "stopped")
    assert stopped["signal"] == "SIGINT" and stopped["sent"] > 0 and stopped["filled"] > 0


def test_a_seeded_demo_sends_the_same_commands_every_run(
    running: Callable[..., tuple[GatewayCluster, str]],
    start_demo: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    cluster, url = running()
    journals = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    first_n = 40

    for journal in journals:
        demo = start_demo(cluster, url, "--rate", "50", "--seed", "11", "--journal", str(journal))
        _wait_for(
            f"{first_n} commands", lambda j=journal: j.exists() and len(j.read_text().splitlines()) > first_n
        )
        assert _stop(demo)[0] == 0
    first, second = (journal.read_text().splitlines()[:first_n] for journal in journals)

    assert first == second
    assert {json.loads(line)["symbol"] for line in first} == set(SYMBOLS)
    assert {json.loads(line)["role"] for line in first} == {"maker", "taker"}


def test_the_demo_lives_through_a_gateway_restart(
    running: Callable[..., tuple[GatewayCluster, str]],
    start_demo: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    cluster, _ = running()
    port = free_port()

    def gateway() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "exchange", "gateway"],
            cwd=PROJECT_ROOT,
            env=cluster.env(EXCHANGE_GATEWAY_PORT=str(port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cluster.processes.append(process)
        wait_ready(url, process)
        return process

    url = f"http://127.0.0.1:{port}"
    first = gateway()
    journal = tmp_path / "journal.jsonl"
    demo = start_demo(cluster, url, "--rate", "25", "--journal", str(journal))
    _wait_for("commands", lambda: journal.exists() and len(journal.read_text().splitlines()) > 10)

    first.kill()
    first.wait()
    time.sleep(1.0)  # the demo meets a gateway that is not there
    before = len(journal.read_text().splitlines())
    gateway()
    _wait_for("commands after the restart", lambda: len(journal.read_text().splitlines()) > before + 10)
    exit_code, logs = _stop(demo)

    assert exit_code == 0
    assert any(line["msg"] == "gateway unavailable; retrying" for line in logs)
    assert _open_orders(cluster, url) == []
