"""`exchange up` on an existing cluster: topics, one ready matcher per partition, a gateway taking orders with
the demo key it printed, a ready relay, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient

from exchange.client import ExchangeClient
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.signing import signed_headers
from runtime.symbols import load_registry
from runtime.topics import TopicNames

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_GUARD_S = 90.0


def _free_port_run(count: int) -> int:
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


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


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


def _demo_secret(output: list[str]) -> str:
    line = next(line for line in output if "demo API key" in line)
    return line.split("secret:")[1].split()[0]


def _history_orders(port: int, secret: str) -> list[dict[str, object]]:
    """The demo account's orders as the history service answers them (none while it cannot answer)."""
    headers = signed_headers("demo", secret, timestamp_ms=int(time.time() * 1000), method="GET",
                             path="/api/v1/orders/history", query="", body=b"")  # fmt: skip
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders/history", headers=headers, timeout=5)
    except httpx.HTTPError:
        return []
    return list(answer.json()["orders"]) if answer.status_code == 200 else []


def _wait_for_history(port: int, secret: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + READY_GUARD_S
    while not (orders := _history_orders(port, secret)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return orders


def test_up_runs_matchers_a_gateway_and_history_all_ready_and_stops_everything_on_ctrl_c(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic_prefix: str, tmp_path: Path
) -> None:
    partitions = load_registry(DEFAULT_SYMBOLS_FILE).partition_count
    ops_base = _free_port_run(partitions + 3)
    gateway_port, relay_port, history_port = (ops_base + partitions + i for i in range(3))
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": topic_prefix,
        "EXCHANGE_DATA_DIR": str(tmp_path),
        "EXCHANGE_UP_MATCHER_OPS_PORT": str(ops_base),
        "EXCHANGE_UP_GATEWAY_PORT": str(gateway_port),
        "EXCHANGE_UP_RELAY_PORT": str(relay_port),
        "EXCHANGE_UP_HISTORY_PORT": str(history_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange", "up"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ports = range(
        ops_base, ops_base + partitions + 3
    )  # the matchers', the gateway's, the relay's, the history's
    try:
        output = _wait_for_line(process, "Ctrl-C stops it")
        existing = set(kafka_admin.list_topics(timeout=10).topics)
        deadline = time.monotonic() + READY_GUARD_S
        while not all(_ready(port) for port in ports) and time.monotonic() < deadline:
            time.sleep(0.2)
        all_ready = all(_ready(port) for port in ports)
        with ExchangeClient(f"http://127.0.0.1:{gateway_port}", "demo", _demo_secret(output)) as demo:
            order = demo.place_order("BTC-USD", "buy", "0.001", price="60000.00")
        history = _wait_for_history(history_port, _demo_secret(output))

        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert any(kafka_bootstrap in line for line in output)
    assert set(TopicNames.with_prefix(topic_prefix).all()) <= existing
    assert all_ready
    assert order["status"] == "NEW"
    assert [(o["order_id"], o["status"], o["price"]) for o in history] == [
        (order["order_id"], "NEW", "60000.00")
    ]
    assert exit_code == 0
    assert not any(_ready(port) for port in ports)  # no service outlives `exchange up`
