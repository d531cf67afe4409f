"""`exchange relay --workers N` on a real broker: N whole relays on one port, one pod's metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from runtime.broker import free_port
from tests.integration.conftest import (
    PROJECT_ROOT,
    FlowCluster,
    RunningMatcher,
    flow_commands,
    generate_flow,
)
from tests.integration.relay_fixtures import WsClient, matcher_book, relay_registry_yaml

SYMBOL = "SYM000"
WORKERS = 2
CLIENTS = 16  # all on one worker by chance: 2 in 2**16
READY_GUARD_S = 90.0
STOP_GUARD_S = 30.0
# Each answer comes from one worker or the other: so many in a row, and every worker has answered.
READY_IN_A_ROW = 8 * WORKERS


Pod = tuple[FlowCluster, subprocess.Popen[bytes], int]  # the cluster, the relay's supervisor, its port


@pytest.fixture
def relay_pod(make_cluster: Callable[..., FlowCluster], tmp_path: Path) -> Iterator[Pod]:
    """A cluster of one symbol and `exchange relay --workers 2` on it (a free port), killed if left over."""
    cluster = make_cluster([SYMBOL])
    registry = tmp_path / "relay-symbols.yaml"
    registry.write_text(relay_registry_yaml([SYMBOL], 1))  # the units matcher_book writes in
    port = free_port()
    env = {
        **os.environ,
        **cluster.env,
        "EXCHANGE_SYMBOLS_FILE": str(registry),
        "EXCHANGE_RELAY_HOST": "127.0.0.1",
        "EXCHANGE_RELAY_PORT": str(port),
    }
    command = [sys.executable, "-m", "exchange", "relay", "--workers", str(WORKERS)]
    pod = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stderr=subprocess.DEVNULL)
    yield cluster, pod, port
    if pod.poll() is None:
        pod.kill()
        pod.wait()


def test_workers_share_the_port_serve_the_same_book_and_show_the_pods_metrics(
    relay_pod: Pod,
    start_matcher: Callable[..., RunningMatcher],
    tmp_path: Path,
) -> None:
    cluster, pod, port = relay_pod
    matcher = start_matcher(cluster)
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 500, seed=25)
    cluster.produce(flow_commands(rows))
    cluster.wait_committed(0, len(rows))
    expected = matcher_book(matcher, SYMBOL, 25)
    _wait_ready(pod, port)
    workers = _children(pod.pid)

    clients = [WsClient(f"ws://127.0.0.1:{port}/ws") for _ in range(CLIENTS)]
    firsts = [client.subscribe_book(SYMBOL) for client in clients]
    serving = {_server_of(port, client.connection.local_address[1], workers) for client in clients}
    pod_clients = [_metric(port, "exchange_relay_clients") for _ in range(2 * READY_IN_A_ROW)]
    for client in clients:
        client.close()
    pod.send_signal(signal.SIGTERM)

    assert len(workers) == WORKERS
    assert all((m["type"], m["seq"]) == ("book_snapshot", expected[0]) for m in firsts)
    assert all((m["bids"], m["asks"]) == (expected[1], expected[2]) for m in firsts)
    assert serving == set(workers)
    assert set(pod_clients) == {CLIENTS}  # whichever worker answers, the pod's sum
    assert pod.wait(STOP_GUARD_S) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_worker_that_ends_takes_the_pod_down_to_be_restarted(relay_pod: Pod) -> None:
    _, pod, port = relay_pod
    _wait_ready(pod, port)
    first, second = _children(pod.pid)

    os.kill(first, signal.SIGKILL)

    assert pod.wait(STOP_GUARD_S) == 1
    assert not Path(f"/proc/{second}").exists()


def _wait_ready(pod: subprocess.Popen[bytes], port: int) -> None:
    deadline, in_a_row = time.monotonic() + READY_GUARD_S, 0
    while in_a_row < READY_IN_A_ROW:
        if time.monotonic() > deadline or pod.poll() is not None:
            pytest.fail(f"the relay's workers were not ready within {READY_GUARD_S} s (exit {pod.poll()})")
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"http://127.0.0.1:{port}/readyz").is_success else 0
        except httpx.HTTPError:
            in_a_row = 0
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _server_of(port: int, client_port: int, workers: list[int]) -> int:
    """The worker holding the server end of the connection from ``client_port`` (Linux's /proc)."""
    local, remote = f":{port:04X}", f":{client_port:04X}"
    inode = next(
        fields[9]
        for fields in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
        if fields[1].endswith(local) and fields[2].endswith(remote)
    )
    return next(pid for pid in workers if f"socket:[{inode}]" in _sockets(pid))


def _sockets(pid: int) -> set[str]:
    fds = Path(f"/proc/{pid}/fd")
    return {os.readlink(fd) for fd in fds.iterdir() if os.readlink(fd).startswith("socket:")}


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
