"""`exchange bench relay --clients N --seconds S`: N WebSocket clients on one book, orders flowing.

The run, on a broker of its own (``EXCHANGE_KAFKA_BOOTSTRAP``'s when set, else a local one started
on a free port, as `bench pipeline` does):

1. A flow of ``../shared/bench/orderflow.py`` (``--flow FLOW.csv``, else a mixed flow generated from
   it), kept to its first symbol: the first ``--preload`` commands go into `orders` at once and the
   real matcher (in a thread of this process) builds a book from them.
2. `exchange relay` starts as a process of its own on a free port, and N clients connect to it from
   ``--client-processes`` processes of their own (asyncio, uvloop when installed), each subscribed to
   the book at ``--depth``; once every one has its snapshot, the rest of the flow is produced to
   `orders` at ``--rate`` commands a second for ``--seconds``, each stamped with the wall clock as a
   gateway stamps its origin. The matcher turns them into `book` records and the relay into book
   deltas, which carry the command's time (``ts``): a client's latency is its receive time minus it.
3. The baseline, in the same run: a bare `websockets` server in a process of its own sends the very
   book deltas one client received from the relay, at the pace they came, to the same number of
   clients with ``websockets.broadcast()``, each stamped with the wall clock as it is broadcast (the
   same bytes but for the time's digits); latency as above, from that stamp.

The relay's latency therefore includes the matcher and two Kafka hops (command to `orders`, matcher
transaction, `book` to the relay), the baseline's none of them: the difference is an upper bound of
what the relay's fan-out costs over a bare broadcast. ``dropped`` counts connections the server
closed during the phase, ``resyncs`` the resync notices clients got (a queue that overflowed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, NamedTuple, cast

import httpx
from confluent_kafka import OFFSET_END, TopicPartition
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from bench.gateway import flow_rows
from bench.pipeline import (
    PACED_PRODUCER_CONFIG,
    PARTITION,
    BenchCluster,
    InProcessMatcher,
    bench_cluster,
    paced_commands,
    percentile_ms,
    positive_int,
    produce_commands,
    wait_at_end,
)
from bench.wireflow import wire_command
from matcher.service import MatcherSettings
from runtime.broker import free_port
from runtime.errors import UserError
from runtime.kafka import CommittedConsumer, IdempotentProducer
from runtime.logs import configure_logging
from runtime.settings import load_settings
from schemas import default_codec

log = logging.getLogger("bench.relay")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_GUARD_S = 120.0
CONNECTS_AT_ONCE = 100
GO_POLL_S = 0.005
BOOK_DELTA = b'{"type":"book",'
TS_FIELD = b'"ts":'
MAX_FRAME = 1 << 22
NOTES = (
    "p50/p99_ms: client receive wall time - the moment the delta's `book` record was readable "
    "(read_committed, by a reader in the bench process, as the relay's consumer first can read it): the "
    "relay's own part; e2e_*_ms: receive - the command's origin time (stamped when produced to `orders`: "
    "adds the in-process matcher's transaction and the Kafka hops); baseline_*_ms: receive - the moment "
    "the bare websockets server broadcast it; clients run in "
    "client_processes processes of their own (asyncio protocols reading frames by hand, uvloop when "
    "installed: websockets' own client costs several times as much per message), apart from the relay "
    "(its own `exchange relay` process) and from the producer and matcher (this process); the baseline "
    "server gets the deltas one relay client received, with their pacing, and broadcast() sends them; "
    "updates_per_s = book deltas a client received per second (mean), msgs_per_s = every message all "
    "clients received per second; dropped = connections the server closed during the phase; "
    "relay_cpu_percent = the relay's processes' CPU over the measured phase; warmup = seconds of the flow "
    "before it (clients connected, not measured: the bench's broker is new and still compiling its hot "
    "code); the baseline runs after the relay phase, with the matcher stopped and the broker idle; all "
    "on one machine shared with the clients, so figures move with its load"
)


# --- the clients (in processes of their own) --------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """What one client process does: ``count`` connections to ``url`` subscribed to ``symbol``."""

    url: str
    count: int
    symbol: str
    depth: int
    seconds: float
    wait_for_snapshot: bool  # the relay answers a subscription with a snapshot; the baseline does not
    record: bool  # keep the book deltas the first connection receives (for the baseline's feed)


@dataclass
class Tally:
    """One client process's counts over the measured window."""

    stamps_ns: array[int] = field(default_factory=lambda: array("q"))  # each book delta's ts
    received_ns: array[int] = field(default_factory=lambda: array("q"))  # when it came
    messages: int = 0
    updates: int = 0
    resyncs: int = 0
    dropped: int = 0
    recorded: list[tuple[int, str]] = field(default_factory=list)  # (receive ns, delta) of connection 0
    measuring: bool = False

    def on_message(self, payload: bytes, received_ns: int, record: bool) -> None:
        if not self.measuring:
            return
        self.messages += 1
        if payload.startswith(BOOK_DELTA):
            self.updates += 1
            self.stamps_ns.append(message_ts(payload))
            self.received_ns.append(received_ns)
            if record:
                self.recorded.append((received_ns, payload.decode()))
        elif payload.startswith(b'{"type":"resync"'):
            self.resyncs += 1


def message_ts(payload: bytes) -> int:
    """A book message's ``ts`` (its last field), read without parsing the whole message."""
    return int(payload[payload.rindex(TS_FIELD) + len(TS_FIELD) : -1])


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A client's frame (RFC 6455): FIN, ``opcode``, masked with the all-zero key (XOR leaves it as is)."""
    size = len(payload)
    header = bytes([0x80 | opcode])
    if size < 126:
        header += bytes([0x80 | size])
    else:
        header += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return header + b"\0\0\0\0" + payload


class FrameReader(asyncio.Protocol):
    """One client connection at the least cost per message: the opening handshake, the server's
    (unmasked) frames split by hand, pings answered; each text frame handed to the tally as bytes.

    The clients share the machine with the relay: websockets' own client costs several times as much
    per message, and a client that cannot keep up would be measured instead of the relay.
    """

    def __init__(self, spec: ClientSpec, tally: Tally, subscribed: asyncio.Event, record: bool) -> None:
        self.spec, self.tally, self.subscribed, self.record = spec, tally, subscribed, record
        self.buffer = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is one without the subclass
        host = self.spec.url.split("/")[2]
        path = "/" + self.spec.url.split("/", 3)[3]
        self.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        received_ns = time.time_ns()
        self.buffer += data
        if not self.open and not self._opened():
            return
        buffer, start, end = self.buffer, 0, len(self.buffer)
        while end - start >= 2:
            opcode, size, at = buffer[start] & 0x0F, buffer[start + 1] & 0x7F, start + 2
            if size == 126:
                size, at = int.from_bytes(buffer[at : at + 2], "big"), at + 2
            elif size == 127:
                size, at = int.from_bytes(buffer[at : at + 8], "big"), at + 8
            if end < at + size:
                break
            self._frame(opcode, bytes(buffer[at : at + size]), received_ns)
            start = at + size
        del buffer[:start]

    def _opened(self) -> bool:
        head, found, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        if not found:
            return False
        if not head.startswith(b"HTTP/1.1 101"):
            raise UserError(f"{self.spec.url} refused the WebSocket: {head.splitlines()[0].decode()}")
        self.open, self.buffer = True, bytearray(rest)
        request = {"op": "subscribe", "channel": "book", "symbol": self.spec.symbol, "depth": self.spec.depth}
        assert self.transport is not None
        self.transport.write(client_frame(0x1, json.dumps(request).encode()))
        if not self.spec.wait_for_snapshot:
            self.subscribed.set()
        return True

    def _frame(self, opcode: int, payload: bytes, received_ns: int) -> None:
        if opcode == 0x1:
            if not self.subscribed.is_set() and payload.startswith(b'{"type":"book_snapshot"'):
                self.subscribed.set()
            self.tally.on_message(payload, received_ns, self.record)
        elif (
            opcode == 0x9 and self.transport is not None
        ):  # a ping: the server closes a client that never pongs
            self.transport.write(client_frame(0xA, payload))
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if self.tally.measuring and code != 1000:
                self.tally.dropped += 1
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def _follow(
    spec: ClientSpec, index: int, tally: Tally, subscribed: asyncio.Event, connects: asyncio.Semaphore
) -> None:
    host, port = spec.url.split("/")[2].rsplit(":", 1)
    record = spec.record and index == 0
    loop = asyncio.get_running_loop()
    async with connects:
        transport, reader = await loop.create_connection(
            lambda: FrameReader(spec, tally, subscribed, record), host, int(port)
        )
    try:
        await reader.closed
    finally:
        if reader.open and not transport.is_closing():
            transport.write(client_frame(0x8, (1000).to_bytes(2, "big")))  # a normal close: not a drop
        transport.close()


async def _clients(spec: ClientSpec, ready: Any, go: Event) -> Tally:
    tally = Tally()
    connects = asyncio.Semaphore(CONNECTS_AT_ONCE)
    subscribed = [asyncio.Event() for _ in range(spec.count)]
    tasks = [asyncio.create_task(_follow(spec, n, tally, subscribed[n], connects)) for n in range(spec.count)]
    for event in subscribed:
        await event.wait()
    ready.put(spec.count)
    while not go.is_set():
        await asyncio.sleep(GO_POLL_S)
    tally.measuring = True
    await asyncio.sleep(spec.seconds)
    tally.measuring = False
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally


def client_process(spec: ClientSpec, ready: Any, go: Event, results: Any) -> None:
    """A client process: connect, say ready, measure from ``go`` for ``spec.seconds``, put the tally."""
    tally = _run(_clients(spec, ready, go))
    results.put(
        {
            "stamps": tally.stamps_ns.tobytes(),
            "received": tally.received_ns.tobytes(),
            "messages": tally.messages,
            "updates": tally.updates,
            "resyncs": tally.resyncs,
            "dropped": tally.dropped,
            "recorded": tally.recorded,
        }
    )


def _run(coroutine: Coroutine[Any, Any, Tally]) -> Tally:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


# --- the baseline: a bare websockets broadcast server ------------------------------------------------


def stamped(delta: str, ts_ns: int) -> str:
    """The delta with ``ts_ns`` as its time (19 digits for another 19: the same length)."""
    return delta[: delta.rindex('"ts":') + len('"ts":')] + f"{ts_ns}}}"


async def _broadcast(recorded: list[tuple[int, str]], port: Any, go: Event, seconds: float) -> None:
    clients: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        clients.add(connection)
        try:
            async for _ in connection:
                pass  # the subscription request: everyone gets the one book
        except ConnectionClosed:
            pass  # the clients hang up at the end of the phase
        finally:
            clients.discard(connection)

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=MAX_FRAME) as server:
        port.put(int(next(iter(server.sockets)).getsockname()[1]))
        while not go.is_set():
            await asyncio.sleep(GO_POLL_S)
        started, first = time.perf_counter(), recorded[0][0] if recorded else 0
        for received_ns, delta in recorded:
            due = started + (received_ns - first) / 1e9
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            broadcast(clients, stamped(delta, time.time_ns()))
        await asyncio.sleep(max(0.0, started + seconds + 1.0 - time.perf_counter()))


def baseline_process(recorded: list[tuple[int, str]], port: Any, go: Event, seconds: float) -> None:
    """The baseline server's process: serve on a free port (put on ``port``), broadcast from ``go``."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(_broadcast(recorded, port, go, seconds))
    else:
        asyncio.run(_broadcast(recorded, port, go, seconds))


# --- one phase: clients on a server, a feed running while they measure -------------------------------


class Phase(NamedTuple):
    """What every client of one phase received: each book delta's ts and receive time, and counts."""

    stamps_ns: array[int]
    received_ns: array[int]
    messages: int
    updates: int
    resyncs: int
    dropped: int
    recorded: list[tuple[int, str]]


def client_specs(url: str, args: argparse.Namespace, symbol: str, *, relay: bool) -> list[ClientSpec]:
    """The clients spread over the client processes (the first records for the baseline)."""
    processes = min(args.client_processes, args.clients)
    counts = [args.clients // processes + (n < args.clients % processes) for n in range(processes)]
    return [
        ClientSpec(
            url, count, symbol, args.depth, args.seconds, wait_for_snapshot=relay, record=relay and n == 0
        )
        for n, count in enumerate(counts)
    ]


def measure(
    specs: list[ClientSpec], go: Event, feed: Callable[[], None], warm_up: Callable[[], None] = lambda: None
) -> Phase:
    """Start the client processes, wait until all are subscribed, run ``warm_up`` (not measured), set
    ``go``, run ``feed``, collect."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    processes = [context.Process(target=client_process, args=(spec, ready, go, results)) for spec in specs]
    for process in processes:
        process.start()
    try:
        connected = sum(ready.get(timeout=START_GUARD_S) for _ in processes)
        log.info("clients subscribed", extra={"clients": connected})
        warm_up()
        go.set()
        feed()
        tallies = [results.get(timeout=START_GUARD_S + specs[0].seconds) for _ in processes]
    except Exception as exc:  # queue.Empty and friends: a client process died or hung
        raise UserError(f"the client processes did not report: {type(exc).__name__} {exc}") from None
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    stamps, received = array("q"), array("q")
    for tally in tallies:
        stamps.frombytes(tally["stamps"])
        received.frombytes(tally["received"])
    return Phase(
        stamps,
        received,
        sum(t["messages"] for t in tallies),
        sum(t["updates"] for t in tallies),
        sum(t["resyncs"] for t in tallies),
        sum(t["dropped"] for t in tallies),
        [item for t in tallies for item in t["recorded"]],
    )


# --- the relay phase ---------------------------------------------------------------------------------


def start_relay(cluster: BenchCluster, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """`exchange relay --workers W` on the bench's topics and a free port, once it answers /readyz."""
    port = free_port()
    env = cluster.process_env(
        EXCHANGE_DATA_DIR=str(workdir),
        EXCHANGE_RELAY_HOST="127.0.0.1",
        EXCHANGE_RELAY_PORT=str(port),
        EXCHANGE_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "exchange", "relay", "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
    deadline = time.monotonic() + START_GUARD_S
    ready = 0  # workers answer in turn: several answers in a row, so that each is likely to be ready
    while time.monotonic() < deadline and process.poll() is None:
        try:
            ready = ready + 1 if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).is_success else 0
            if ready >= 4 * workers:
                return process, f"ws://127.0.0.1:{port}/ws"
        except httpx.HTTPError:
            ready = 0
        time.sleep(0.1)
    process.kill()
    raise UserError(f"the relay did not become ready within {START_GUARD_S:.0f} s")


class BookVisibility:
    """When each command's `book` record became readable (``read_committed``), as the relay's consumer
    can first see it: the start of the relay's own part of the latency."""

    def __init__(self, cluster: BenchCluster) -> None:
        self.seen_ns: dict[int, int] = {}  # the command's ts -> the wall clock when its record was read
        self._stop = threading.Event()
        self._reader = CommittedConsumer(
            cluster.bootstrap,
            group_id=f"{cluster.prefix}book-reader",
            client_id="bench-relay-book",
            config={"fetch.wait.max.ms": 5},
        )
        self._reader.assign([TopicPartition(cluster.topics.book, PARTITION, OFFSET_END)])
        wait_at_end(self._reader, cluster.topics.book)  # the start is resolved before any order flows
        self._thread = threading.Thread(target=self._read, name="book-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        codec = default_codec()
        while not self._stop.is_set():
            message = self._reader.poll(0.05)
            if message is not None and message.value():
                seen = time.time_ns()
                _, update = codec.decode(message.value(), message.headers())
                self.seen_ns.setdefault(update["ts_ns"], seen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._reader.close()


def cpu_seconds(pid: int) -> float | None:
    """The user and system CPU time a process and its children (the relay's workers) have used so far
    (Linux's /proc); None elsewhere."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ticks = 0
        for process in [pid, *map(int, children)]:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def paced_orders(cluster: BenchCluster, commands: list[Any], rate: int, seconds: float) -> None:
    """Produce ``commands`` to `orders` at ``rate`` a second for ``seconds``, stamped with the wall clock."""
    codec = default_codec()
    producer = IdempotentProducer(
        cluster.bootstrap, client_id="bench-relay-orders", config=PACED_PRODUCER_CONFIG
    )
    interval, started = 1.0 / rate, time.perf_counter()
    try:
        for sent, command in enumerate(commands):
            due = started + sent * interval
            if due - started >= seconds:
                break
            time.sleep(max(0.0, due - time.perf_counter()))
            command.record["origin"]["ts_ns"] = time.time_ns()
            value, headers = codec.encode(command.schema, command.record, checked=False)
            producer.produce(
                cluster.topics.orders,
                value,
                key=command.symbol.encode(),
                partition=PARTITION,
                headers=headers,
            )
            producer.poll(0)
    finally:
        producer.close()
    time.sleep(max(0.0, started + seconds - time.perf_counter()))


# --- the command ---------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=positive_int, required=True, help="WebSocket clients on the book")
    parser.add_argument("--seconds", type=float, required=True, help="length of each measured phase")
    parser.add_argument(
        "--rate", type=positive_int, default=50, help="commands a second into `orders` (default: %(default)s)"
    )
    parser.add_argument(
        "--depth", type=int, default=25, choices=(25, 100, 500, 1000), help="the book subscription's depth"
    )
    parser.add_argument(
        "--client-processes",
        type=positive_int,
        default=2,
        help="processes the clients run in (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="seconds of the flow before the measured phase, clients connected (default: %(default)s)",
    )
    parser.add_argument(
        "--relay-workers",
        type=positive_int,
        default=1,
        help="the relay's worker processes on its port (`exchange relay --workers`, default: %(default)s)",
    )
    parser.add_argument(
        "--preload", type=positive_int, default=2000, help="commands that build the book first"
    )
    parser.add_argument(
        "--flow", type=Path, default=None, help="CSV written by orderflow.py (default: generated)"
    )


def run(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 3600:
        raise UserError("--seconds must be above 0 and at most 3600")
    if not 0 <= args.warmup <= 3600:
        raise UserError("--warmup must be from 0 to 3600")
    settings = load_settings(MatcherSettings)
    configure_logging(settings.log_level, settings.log_format)
    rows = flow_rows(args.flow)
    symbol = rows[0].symbol
    rows = [row for row in rows if row.symbol == symbol]
    preload, later = rows[: args.preload], rows[args.preload :] or rows
    warm_count = int(args.rate * args.warmup)
    paced = paced_commands(later, warm_count + int(args.rate * args.seconds) + 1)
    warm, measured = paced[:warm_count], paced[warm_count:]
    with (
        tempfile.TemporaryDirectory(prefix="exchange-bench-relay-") as workdir,
        bench_cluster(settings, [symbol], Path(workdir)) as cluster,
    ):
        end = produce_commands(
            cluster.bootstrap, cluster.topics.orders, (wire_command(row) for row in preload)
        )
        matcher_settings = cluster.matcher_settings(settings)
        matcher = InProcessMatcher(matcher_settings).start()
        try:
            matcher.throughput(end)
            relay, url = start_relay(cluster, Path(workdir), args.relay_workers)
            try:
                go = multiprocessing.get_context("spawn").Event()
                specs = client_specs(url, args, symbol, relay=True)
                visibility = BookVisibility(cluster)
                cpu: list[float | None] = []  # the relay's CPU seconds as the measured phase starts and ends

                def feed() -> None:
                    cpu.append(cpu_seconds(relay.pid))
                    paced_orders(cluster, measured, args.rate, args.seconds)
                    cpu.append(cpu_seconds(relay.pid))

                def warm_up() -> None:
                    if warm:
                        paced_orders(cluster, warm, args.rate, args.warmup)

                try:
                    relayed = measure(specs, go, feed, warm_up)
                finally:
                    visibility.stop()
                cpu_before, cpu_after = cpu
            finally:
                relay.terminate()
                relay.wait(30)
        finally:
            matcher.stop()
    baseline = run_baseline(args, symbol, relayed.recorded)
    relay_cpu = (
        None
        if cpu_before is None or cpu_after is None
        else round(100 * (cpu_after - cpu_before) / args.seconds)
    )
    print(json.dumps(report(args, relayed, baseline, visibility.seen_ns, relay_cpu)))
    return 0


def run_baseline(args: argparse.Namespace, symbol: str, recorded: list[tuple[int, str]]) -> Phase:
    """The same deltas, paced as they came, broadcast by a bare websockets server to as many clients."""
    context = multiprocessing.get_context("spawn")
    go, port = context.Event(), context.Queue()
    server = context.Process(target=baseline_process, args=(recorded, port, go, args.seconds))
    server.start()
    try:
        url = f"ws://127.0.0.1:{port.get(timeout=START_GUARD_S)}/"
        return measure(client_specs(url, args, symbol, relay=False), go, lambda: time.sleep(args.seconds))
    finally:
        server.join(args.seconds + 30)
        if server.is_alive():
            server.kill()


def latencies_ns(phase: Phase, since: dict[int, int] | None = None) -> list[int]:
    """Each delta's receive time minus its ts, or minus the moment its record was readable (``since``)."""
    if since is None:
        return [received - stamp for stamp, received in zip(phase.stamps_ns, phase.received_ns, strict=True)]
    return [
        received - since[stamp]
        for stamp, received in zip(phase.stamps_ns, phase.received_ns, strict=True)
        if stamp in since
    ]


def report(
    args: argparse.Namespace,
    relayed: Phase,
    baseline: Phase,
    readable_ns: dict[int, int],
    relay_cpu: int | None,
) -> dict[str, object]:
    fan_out, e2e, bare = latencies_ns(relayed, readable_ns), latencies_ns(relayed), latencies_ns(baseline)

    def ms(latencies: list[int], percent: float) -> float | None:
        return percentile_ms(latencies, percent) if latencies else None

    return {
        "bench": "relay",
        "clients": args.clients,
        "updates_per_s": round(relayed.updates / args.clients / args.seconds, 1),
        "msgs_per_s": round(relayed.messages / args.seconds),
        "p50_ms": ms(fan_out, 50),
        "p99_ms": ms(fan_out, 99),
        "baseline_p50_ms": ms(bare, 50),
        "baseline_p99_ms": ms(bare, 99),
        "e2e_p50_ms": ms(e2e, 50),
        "e2e_p99_ms": ms(e2e, 99),
        "baseline_msgs_per_s": round(baseline.messages / args.seconds),
        "dropped": relayed.dropped,
        "resyncs": relayed.resyncs,
        "baseline_dropped": baseline.dropped,
        "deltas_fed_to_baseline": len(relayed.recorded),
        "deltas_unmatched": len(relayed.stamps_ns) - len(fan_out),
        "rate": args.rate,
        "seconds": args.seconds,
        "depth": args.depth,
        "client_processes": min(args.client_processes, args.clients),
        "relay_workers": args.relay_workers,
        "warmup": args.warmup,
        "relay_cpu_percent": relay_cpu,
        "notes": NOTES,
    }
