"""`exchange bench gateway --seconds S`: signed orders over REST against a running gateway.

A load client in this process posts signed orders (``POST /api/v1/orders``) over keep-alive
HTTP/1.1 connections on loopback to the gateway at ``--url``, and the same client, with the same
request bytes, posts to a FastAPI hello-world app served the same way as the gateway (uvicorn,
uvloop and httptools when installed, one worker) in a subprocess on a free port: the baseline,
measured in the same run. Each target is measured twice:

1. **Unpaced** (maximum throughput): ``--connections`` connections, each sending its next request
   as soon as the previous one is answered, for ``--seconds``; latency from send to answer.
2. **Paced** (open loop): requests scheduled at ``--rate`` per second for ``--seconds`` and sent on
   schedule by whichever connection is free; latency from the *scheduled* time to the answer, so a
   gateway that falls behind shows it in its latency instead of slowing the client down.

A 201 or a 202 (the reply did not come in time: ``pending``) counts as an order placed; a 409 or
422 carrying one of the matcher's refusals of what the order asked (``MATCHER_REFUSALS``: above all
the open-order limit, which one key's resting orders reach since cancels are not sent) as
``rejected``: both went the whole way round and count in rates and latencies. Any other answer, a
lost connection or no answer within the drain time is an error, and the first few are printed on
stderr.

The orders come from a flow of ``../shared/bench/orderflow.py`` (``--flow FLOW.csv``, else a mixed
flow generated from it): each new order row becomes a request body for one of the gateway's own
symbols (``--symbols``, read from its public ``/api/v1/symbols``), priced at the flow's offset from
its mid, in ticks, around the symbol's reference price (kept inside half its price band), with
the flow's lots counted in multiples of the symbol's min_qty. Cancel rows are skipped: this bench
measures placing orders. The flow is cycled when a run needs more orders than it has; every
request gets a client order id of its own (so no retry semantics, and a signature never repeats).

The gateway under test must let one key send far more than its default 200 requests a second:
run it with, e.g., ``EXCHANGE_GATEWAY_RATE_PER_S=100000 EXCHANGE_GATEWAY_RATE_BURST=100000``,
or the bench measures the rate limiter (429s, counted as errors, with a hint on stderr). The key
is ``EXCHANGE_API_KEY``/``EXCHANGE_API_SECRET``, else the demo key `exchange up` wrote into the data
directory; the gateway must answer ``/readyz`` with 200 before anything starts. Orders placed
stay in the cluster (those that rest keep resting): run it against a cluster for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from bench.wireflow import FlowRow, read_flow
from exchange.client import DEFAULT_URL, environment_key, listed_symbols
from runtime.errors import UserError
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.signing import signed_headers
from runtime.symbols import Symbol, SymbolStatus

log = logging.getLogger("bench.gateway")

API_PATH = "/api/v1/orders"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ORDERFLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"
# The flow generated when none is given: enough distinct orders for a short run (it is cycled).
GENERATED_PROFILE, GENERATED_ACTIONS, GENERATED_SEED = "mixed", 20_000, 1
DEFAULT_SYMBOLS = "BTC-USD,ETH-USD"
# After the last request is due, how long answers are awaited: the gateway's reply wait is 5 s.
DRAIN_S = 15.0
START_GUARD_S = 30.0
ERROR_SAMPLES = 5
HIGH_RATE_HINT = (
    "the gateway refused requests with 429 (its per-key rate limit): run the gateway under test with "
    "EXCHANGE_GATEWAY_RATE_PER_S=100000 EXCHANGE_GATEWAY_RATE_BURST=100000"
)
NOTES = (
    "one load client process (asyncio, raw HTTP/1.1 keep-alive, uvloop when installed) on the same "
    "machine as the gateway and the hello-world app, which gets identical request bytes; unpaced: C "
    "connections closed-loop, latency from send; paced: open loop at paced_rate, latency from the "
    "scheduled send time (from the send when a connection was free but the client's timer woke late); "
    "requests due but not sent in the phase (every connection busy) are paced errors (paced_unsent); "
    "rates count 201 and 202 answers and the matcher's refusals over the phase's wall time; "
    "ratio = orders_per_s / hello_world_per_s; "
    "rejected: the matcher's refusals by code (the open-order limit, met since no cancels are sent), "
    "answered the whole way round and so in the latencies, not errors"
)


# --- the flow as request bodies -------------------------------------------------------------------


def flow_rows(path: Path | None) -> list[FlowRow]:
    """The rows of ``path``, or of a mixed flow generated by ../shared/bench/orderflow.py."""
    if path is not None:
        return list(read_flow(path))
    orderflow = _orderflow()
    generated = orderflow.generate(GENERATED_PROFILE, GENERATED_ACTIONS, 2, GENERATED_SEED)
    return [
        FlowRow(seq, action, sym, oid, side, kind, int(price) if price != "" else None, int(qty or 0))
        for seq, (action, sym, oid, side, kind, price, qty) in enumerate(generated, 1)
    ]


def _orderflow() -> ModuleType:
    """orderflow.py, imported by path (a script beside the project, not a package)."""
    spec = importlib.util.spec_from_file_location("orderflow", ORDERFLOW)
    if not ORDERFLOW.is_file() or spec is None or spec.loader is None:
        raise UserError(f"{ORDERFLOW} is missing: give a flow with --flow FLOW.csv")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flow_mids(rows: Sequence[FlowRow]) -> dict[str, int]:
    """Each flow symbol's middle price in ticks: the median of its limit prices.

    orderflow.py prices around a mid that drifts only a few ticks; what the mapping keeps is each
    order's offset from it (passive, marketable), so an estimate a few ticks off changes nothing.
    """
    prices: dict[str, list[int]] = {}
    for row in rows:
        if row.price is not None:
            prices.setdefault(row.symbol, []).append(row.price)
    return {symbol: statistics.median_low(values) for symbol, values in prices.items()}


def order_price_ticks(flow_price: int, flow_mid: int, symbol: Symbol) -> int:
    """The flow's offset from its mid, around ``symbol``'s reference price, kept in half its band.

    Half, not all of it: the band is centred on the last trade, which may have moved a little.
    """
    ticks = symbol.reference_price_ticks + flow_price - flow_mid
    if symbol.band_bps:
        half_band = symbol.reference_price_ticks * symbol.band_bps // 20_000
        low, high = symbol.reference_price_ticks - half_band, symbol.reference_price_ticks + half_band
        ticks = min(max(ticks, low), high)
    return max(ticks, 1)


def order_body(row: FlowRow, symbol: Symbol, flow_mid: int) -> dict[str, str]:
    """The request body of a new-order row (without a client order id): decimal strings on the grid.

    The flow's quantities are small counts (1 to a few hundred lots); one flow lot is the symbol's
    min_qty here, so the smallest order is valid and the largest stays under max_qty.
    """
    lots = min(max(row.qty, 1) * symbol.min_qty_lots, symbol.max_qty_lots)
    body = {"symbol": symbol.name, "side": row.side, "type": row.order_type or "limit"}
    if body["type"] == "limit":
        if row.price is None:
            raise UserError(f"flow row {row.seq}: a limit order without a price")
        body["price"] = symbol.ticks_to_price(order_price_ticks(row.price, flow_mid, symbol))
    body["quantity"] = symbol.lots_to_qty(lots)
    # A market order takes what is there and no more, as in the other benches' translation.
    body["time_in_force"] = "GTC" if body["type"] == "limit" else "IOC"
    return body


def body_templates(rows: Sequence[FlowRow], symbols: Sequence[Symbol]) -> list[bytes]:
    """Every new-order row as the JSON body up to its client order id's value (see ``with_client_id``).

    Flow symbols are given the gateway's symbols round robin, in order of first appearance.
    """
    mids = flow_mids(rows)
    mapping: dict[str, Symbol] = {}
    templates = []
    for row in rows:
        if row.action != "new":
            continue
        symbol = mapping.setdefault(row.symbol, symbols[len(mapping) % len(symbols)])
        body = order_body(row, symbol, mids.get(row.symbol, 0))
        # Rendered once: at run time only the client order id is appended, not the JSON re-encoded.
        templates.append(json.dumps(body, separators=(",", ":"))[:-1].encode() + b',"client_order_id":"')
    return templates


def with_client_id(template: bytes, client_order_id: str) -> bytes:
    """A body template completed with its client order id."""
    return template + client_order_id.encode() + b'"}'


# --- signed requests ------------------------------------------------------------------------------


class OrderRequests:
    """The flow's orders as complete signed HTTP/1.1 requests, one new client order id each."""

    def __init__(self, templates: Sequence[bytes], host: str, key_id: str, secret: str) -> None:
        if not templates:
            raise UserError("the flow has no new orders")
        self.templates = templates
        self.host = host
        self.key_id = key_id
        self.secret = secret
        # Unique per run, so an order of an earlier run is never answered from the matcher's memory.
        self.run_id = uuid.uuid4().hex[:10]
        self.sent = 0

    def next(self) -> bytes:
        """The next order's request bytes, signed now (the gateway checks the timestamp's freshness)."""
        body = with_client_id(self.templates[self.sent % len(self.templates)], f"b{self.run_id}-{self.sent}")
        self.sent += 1
        headers = signed_headers(
            self.key_id,
            self.secret,
            timestamp_ms=time.time_ns() // 1_000_000,
            method="POST",
            path=API_PATH,
            query="",
            body=body,
        )
        head = (
            f"POST {API_PATH} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        )
        return head.encode() + body


# --- a lean HTTP/1.1 client -----------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection sending one request at a time.

    Lean on purpose: the client shares the machine's cores with what it measures, and a general
    client (httpx) costs several times the CPU per request of a write and two reads.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the connection afresh (closing the old one); its streams.

        Each phase starts on fresh connections: a server closes idle keep-alive ones (uvicorn after
        5 s), and a request sent just as it does so fails without having been processed.
        """
        self.close()
        self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` and return the answer's status and body (opening the connection if needed)."""
        reader, writer = self._streams or await self.open()
        try:
            writer.write(request)
            status, body, keep_alive = await read_response(reader)
        except BaseException:
            self.close()  # the stream may be mid-answer: never reuse it
            raise
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: status, body (by Content-Length) and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, keep_alive = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by this client")
    return status, await reader.readexactly(length) if length else b"", keep_alive


# --- phases ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase against one target saw."""

    latencies_ns: list[int] = field(default_factory=list)  # of the orders answered (placed or rejected)
    placed: int = 0
    pending: int = 0  # of them, answered 202
    rejected: Counter[str] = field(default_factory=Counter)  # answered by the matcher's refusal, by code
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    unsent: int = 0  # paced: requests due within the phase but not sent in it (every connection busy)
    seconds: float = 0.0
    client_cpu_s: float = 0.0

    def record(self, status: int, body: bytes, latency_ns: int) -> None:
        self.statuses[status] += 1
        if status in (201, 202):
            self.placed += 1
            if status == 202:
                self.pending += 1
            self.latencies_ns.append(latency_ns)
        elif (code := matcher_refusal(status, body)) is not None:
            self.rejected[code] += 1
            self.latencies_ns.append(latency_ns)
        else:
            self.error(f"{status} {body[:300].decode(errors='replace')}")

    def error(self, what: str, count: int = 1) -> None:
        self.errors += count
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(what)

    @property
    def per_s(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def answered(self) -> int:
        """Orders the matcher answered: placed, or refused for what the order asked (``rejected``)."""
        return self.placed + sum(self.rejected.values())


# The matcher's refusals of a well-formed order that a flow replayed as it is meets: the answer has
# made the whole way (gateway, `orders`, matcher, reply) like an acceptance. Above all the open-order
# limit: the bench sends no cancels, so one account's resting orders reach any symbol's limit.
MATCHER_REFUSALS = frozenset({"TOO_MANY_OPEN_ORDERS", "POST_ONLY_WOULD_TAKE", "PRICE_OUT_OF_BAND"})


def matcher_refusal(status: int, body: bytes) -> str | None:
    """The code of a matcher's refusal in this answer (``MATCHER_REFUSALS``), else None."""
    if status not in (409, 422):
        return None
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if code in MATCHER_REFUSALS else None


async def _send(connection: Connection, request: bytes, since_ns: int, tally: Tally) -> None:
    try:
        status, body = await connection.exchange(request)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        return
    tally.record(status, body, time.perf_counter_ns() - since_ns)


async def _closed_loop(connection: Connection, requests: OrderRequests, until: float, tally: Tally) -> None:
    while time.perf_counter() < until:
        request = requests.next()
        await _send(connection, request, time.perf_counter_ns(), tally)


class Schedule:
    """Send times at a fixed rate: the open loop's clock, shared by every connection."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.interval_ns = round(1e9 / rate)
        self.count = max(1, round(rate * seconds))
        self.start_ns = time.perf_counter_ns()
        self.end_ns = self.start_ns + round(seconds * 1e9)
        self.taken = 0

    def take(self) -> int | None:
        """The next request's due time (perf_counter_ns), or None when the schedule or its time is over.

        A backlog is not sent after the phase: what a server could not take in time stays unsent.
        """
        if self.taken == self.count or time.perf_counter_ns() > self.end_ns:
            return None
        self.taken += 1
        return self.start_ns + (self.taken - 1) * self.interval_ns


async def _open_loop(
    connection: Connection, requests: OrderRequests, schedule: Schedule, tally: Tally
) -> None:
    while (due_ns := schedule.take()) is not None:
        free_at_due = due_ns > time.perf_counter_ns()
        if free_at_due:
            await asyncio.sleep((due_ns - time.perf_counter_ns()) / 1e9)
        request = requests.next()
        # Free at the due time: waking late (the loop's timers have a resolution of 1 ms) is the
        # client's delay, not the server's, so the clock starts at the send. Busy at the due time
        # (every connection still waiting on the server): the wait counts, no coordinated omission.
        await _send(connection, request, time.perf_counter_ns() if free_at_due else due_ns, tally)


async def run_phase(
    connections: list[Connection],
    requests: OrderRequests,
    seconds: float,
    rate: int | None,
) -> Tally:
    """One phase: unpaced (``rate`` None) or paced; answers still missing after the drain are errors.

    Requests due but never sent (paced, the server behind) are errors too, counted in ``unsent``.
    """
    tally = Tally()
    await asyncio.gather(*(connection.open() for connection in connections))  # untimed
    schedule = Schedule(rate, seconds) if rate is not None else None
    started, cpu_started = time.perf_counter(), time.process_time()
    until = started + seconds
    tasks = [
        asyncio.create_task(
            _open_loop(connection, requests, schedule, tally)
            if schedule is not None
            else _closed_loop(connection, requests, until, tally)
        )
        for connection in connections
    ]
    done, unfinished = await asyncio.wait(tasks, timeout=seconds + DRAIN_S)
    for task in unfinished:
        task.cancel()
        tally.error(f"no answer within {DRAIN_S:.0f} s after the phase")
    await asyncio.gather(*unfinished, return_exceptions=True)
    for task in done:
        task.result()  # a bug in a sender must not pass silently
    tally.seconds = time.perf_counter() - started
    tally.client_cpu_s = time.process_time() - cpu_started
    if schedule is not None and schedule.taken < schedule.count:
        tally.unsent = schedule.count - schedule.taken
        tally.error(
            f"{tally.unsent} requests due in the phase were not sent: every connection was busy", tally.unsent
        )
    if unfinished:
        for connection in connections:
            connection.close()  # a cancelled exchange leaves its connection mid-answer
    return tally


# --- the hello-world baseline ---------------------------------------------------------------------


def server_choice() -> tuple[str, str]:
    """uvicorn's loop and HTTP implementation, chosen as gateway/service.py does: the fastest installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return loop, http


def hello_world_app() -> FastAPI:
    """FastAPI's hello world, at the orders path so the client sends it the very same requests."""
    app = FastAPI()

    @app.post(API_PATH, status_code=201)
    async def hello() -> dict[str, str]:
        return {"message": "Hello World"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def serve_hello_world(port: int) -> None:
    """Serve ``hello_world_app`` as the gateway is served: uvicorn, one worker, no access log."""
    import uvicorn

    loop, http = server_choice()
    uvicorn.run(
        "bench.gateway:hello_world_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        loop=loop,
        http=http,
        log_level="warning",
        access_log=False,
    )


@contextmanager
def hello_world_server() -> Iterator[str]:
    """A hello-world server in a subprocess on a free loopback port; yields its URL."""
    from runtime.broker import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", f"from bench.gateway import serve_hello_world; serve_hello_world({port})"],
        cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_GUARD_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the hello-world server exited with code {process.returncode}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise UserError(f"the hello-world server did not answer {url}/readyz within {START_GUARD_S:.0f} s")


# --- the gateway ----------------------------------------------------------------------------------


def api_key() -> tuple[str, str]:
    """EXCHANGE_API_KEY/EXCHANGE_API_SECRET, else the demo key `exchange up` wrote (as `exchange order`)."""
    return environment_key(Path(load_settings(Settings).data_dir))


def gateway_symbols(url: str, names: Sequence[str]) -> list[Symbol]:
    """``names`` as the gateway's registry has them (its public /api/v1/symbols), after /readyz says 200."""
    try:
        ready = httpx.get(f"{url}/readyz", timeout=5.0)
        if ready.status_code != 200:
            raise UserError(f"the gateway at {url} is not ready: {ready.status_code} {ready.text.strip()}")
        by_name = {symbol.name: symbol for symbol in listed_symbols(url)}
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach the gateway at {url}: {exc}") from None
    symbols = []
    for name in names:
        symbol = by_name.get(name)
        if symbol is None or symbol.status is not SymbolStatus.TRADING:
            raise UserError(f"the gateway has no trading symbol {name!r} (it has: {', '.join(by_name)})")
        symbols.append(symbol)
    return symbols


# --- the command ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, required=True, help="length of each measured phase")
    parser.add_argument(
        "--rate", type=int, default=1000, help="requests per second of the paced phase (default: %(default)s)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent keep-alive connections (default: %(default)s)"
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("EXCHANGE_GATEWAY_URL", DEFAULT_URL),
        help="the gateway, run with a high per-key rate limit, e.g. EXCHANGE_GATEWAY_RATE_PER_S=100000 "
        "EXCHANGE_GATEWAY_RATE_BURST=100000 (default: EXCHANGE_GATEWAY_URL or %(default)s)",
    )
    parser.add_argument(
        "--flow", type=Path, default=None, help="CSV written by orderflow.py (default: a mixed flow from it)"
    )
    parser.add_argument(
        "--symbols",
        default=DEFAULT_SYMBOLS,
        help="the gateway's symbols the flow's symbols map onto, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--warm-up-s",
        type=float,
        default=2.0,
        help="untimed unpaced load on each target first (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format)
    for option in ("seconds", "rate", "connections"):
        if getattr(args, option) <= 0:
            raise UserError(f"--{option} must be positive")
    url = args.url.rstrip("/")
    symbols = gateway_symbols(url, [name.strip() for name in args.symbols.split(",") if name.strip()])
    templates = body_templates(flow_rows(args.flow), symbols)
    key = api_key()
    with hello_world_server() as hello_url, asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        results = runner.run(measure(args, url=url, hello_url=hello_url, templates=templates, key=key))
    print(json.dumps(report(args, results)))
    return 0


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (None: asyncio's own).

    The client's cost per request is part of what both targets see: keep it as low as the servers'.
    """
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


class Results(NamedTuple):
    gateway: Tally
    hello_world: Tally
    gateway_paced: Tally
    hello_world_paced: Tally


# The open loop needs a connection for every request in flight: enough for answers of 250 ms.
PACED_IN_FLIGHT_S = 0.25


def paced_connections(rate: int, connections: int) -> int:
    """Connections of the paced phase: ``--connections``, or more when the rate needs them."""
    return max(connections, math.ceil(rate * PACED_IN_FLIGHT_S))


async def measure(
    args: argparse.Namespace, *, url: str, hello_url: str, templates: list[bytes], key: tuple[str, str]
) -> Results:
    """Warm-up, then unpaced and paced phases against the gateway and the hello world, alternating."""
    targets = {}
    for name, target_url in (("gateway", url), ("hello world", hello_url)):
        parts = urlsplit(target_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise UserError(f"{target_url}: only http://host:port URLs are supported")
        pool = {
            count: [Connection(parts.hostname, parts.port or 80) for _ in range(count)]
            for count in {args.connections, paced_connections(args.rate, args.connections)}
        }
        targets[name] = (pool, OrderRequests(templates, parts.netloc, *key))
    for name, (pool, requests) in targets.items():
        log.info("warm-up", extra={"target": name, "seconds": args.warm_up_s})
        warm = await run_phase(pool[args.connections], requests, args.warm_up_s, None)
        if warm.placed == 0:
            raise UserError(f"{name}: no order was placed in the warm-up; first answers: {warm.samples}")
    tallies = []
    for rate in (None, args.rate):
        count = args.connections if rate is None else paced_connections(rate, args.connections)
        for name, (pool, requests) in targets.items():
            log.info("phase", extra={"target": name, "rate": rate or "unpaced", "seconds": args.seconds})
            tally = await run_phase(pool[count], requests, args.seconds, rate)
            _show_errors(name, tally)
            tallies.append(tally)
    return Results(*tallies)


def _show_errors(name: str, tally: Tally) -> None:
    if not tally.errors:
        return
    statuses = {str(status): count for status, count in sorted(tally.statuses.items())}
    log.warning("errors", extra={"target": name, "errors": tally.errors, "statuses": statuses})
    for sample in tally.samples:
        log.warning("error answer", extra={"target": name, "answer": sample})
    if tally.statuses[429]:
        log.warning(HIGH_RATE_HINT)


def latency_ms(latencies_ns: list[int], percent: int) -> float | None:
    """The ``percent``-th percentile in milliseconds, None when nothing was measured."""
    if not latencies_ns:
        return None
    # Imported here: the hello-world server imports this module and should not carry Kafka's clients.
    from bench.pipeline import percentile_ms

    return percentile_ms(latencies_ns, percent)


def report(args: argparse.Namespace, results: Results) -> dict[str, object]:
    """The JSON line: the asked-for keys first, then what helps to read them."""
    gateway, hello, paced, hello_paced = results
    loop, http = server_choice()
    return {
        "orders_per_s": round(gateway.per_s),
        "p50_ms": latency_ms(gateway.latencies_ns, 50),
        "p99_ms": latency_ms(gateway.latencies_ns, 99),
        "hello_world_per_s": round(hello.per_s),
        "ratio": round(gateway.per_s / hello.per_s, 3) if hello.per_s else None,
        "errors": gateway.errors,
        "pending": gateway.pending,
        "rejected": dict(gateway.rejected),
        "paced_rate": args.rate,
        "paced_p50_ms": latency_ms(paced.latencies_ns, 50),
        "paced_p99_ms": latency_ms(paced.latencies_ns, 99),
        "paced_errors": paced.errors,
        "paced_pending": paced.pending,
        "paced_rejected": dict(paced.rejected),
        "paced_per_s": round(paced.per_s),
        "paced_unsent": paced.unsent,
        "hello_world_p50_ms": latency_ms(hello.latencies_ns, 50),
        "hello_world_p99_ms": latency_ms(hello.latencies_ns, 99),
        "hello_world_errors": hello.errors,
        "hello_world_paced_p50_ms": latency_ms(hello_paced.latencies_ns, 50),
        "hello_world_paced_p99_ms": latency_ms(hello_paced.latencies_ns, 99),
        "hello_world_paced_errors": hello_paced.errors,
        "hello_world_paced_unsent": hello_paced.unsent,
        "orders": gateway.placed,
        "seconds": args.seconds,
        "connections": args.connections,
        "paced_connections": paced_connections(args.rate, args.connections),
        # The client's CPU seconds per second of phase: what it took from the 2 cores it shares.
        "client_cpu_share": round(gateway.client_cpu_s / gateway.seconds, 2),
        "hello_world_client_cpu_share": round(hello.client_cpu_s / hello.seconds, 2),
        "symbols": args.symbols,
        "flow": args.flow.name if args.flow else f"orderflow.py {GENERATED_PROFILE} (generated)",
        "server": f"uvicorn {loop} {http}",
        "cpus": os.cpu_count(),
        "notes": NOTES,
    }
