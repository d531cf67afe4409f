"""Relays on the real broker (each in a thread with its own event loop) and a WebSocket client that
keeps its copy of a book the way docs/websocket.md tells a client to, checksum included."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from prometheus_client import CollectorRegistry
from websockets.sync.client import ClientConnection, connect

from relay.access import auth_text
from relay.app import Relay
from relay.settings import RelaySettings
from runtime.signing import sign

if TYPE_CHECKING:
    from tests.integration.conftest import FlowCluster, RunningMatcher

T = TypeVar("T")
READY_GUARD_S = 90.0
RECV_GUARD_S = 30.0

# The relay's own view of the flow's symbols: the same partitions, with decimals, so every price
# and size crosses the tick/lot conversion (the matcher works in ticks and lots either way).
RELAY_KEYS_YAML = """\
keys:
  - {id: k-acct-1, secret: acct-1-secret-of-sixteen, account: acct-1, scopes: [read]}
  - {id: k-acct-2, secret: acct-2-secret-of-sixteen, account: acct-2, scopes: [read]}
  - {id: k-trader, secret: trader-secret-of-sixteen, account: acct-3, scopes: [trade]}
"""
TICK = Decimal("0.01")
LOT = Decimal("0.001")


def relay_registry_yaml(symbols: list[str], partition_count: int) -> str:
    lines = [f"partition_count: {partition_count}", "symbols:"]
    for index, symbol in enumerate(symbols):
        lines += [
            f"  {symbol}:",
            f"    partition: {index % partition_count}",
            f'    tick_size: "{TICK}"',
            f'    lot_size: "{LOT}"',
            f'    min_qty: "{LOT}"',
            '    max_qty: "1000000"',
            '    reference_price: "100.00"',
            '    band_percent: "0"',
            "    status: trading",
        ]
    return "\n".join(lines) + "\n"


class RunningRelay:
    """A relay serving on a free port from a thread of the test process."""

    def __init__(self, settings: RelaySettings) -> None:
        self.relay = Relay(settings, CollectorRegistry())
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()
        if not self._listening.wait(READY_GUARD_S):
            pytest.fail("the relay did not start listening")

    def _run(self) -> None:
        self._loop.run_until_complete(self.relay.serve(self._stop, lambda _port: self._listening.set()))

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.relay.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.relay.port}"

    def wait_ready(self, guard_s: float = READY_GUARD_S) -> None:
        deadline = time.monotonic() + guard_s
        while httpx.get(f"{self.http}/readyz", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("the relay never became ready")
            time.sleep(0.05)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run in the relay's loop (where its market lives), its result here."""
        result: Future[T] = Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except Exception as exc:  # handed to the test
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return result.result(RECV_GUARD_S)

    def book(self, symbol: str, depth: int) -> tuple[int, list[list[str]], list[list[str]]]:
        """The relay's own book of ``symbol``: (seq, bids, asks) as decimal strings, best first."""

        def read() -> tuple[int, list[list[str]], list[list[str]]]:
            market = self.relay.market.of(symbol)
            units = self.relay.hub.units_of(symbol)
            assert units is not None
            book = market.book
            return book.seq, units.levels(book.bids.top(depth)), units.levels(book.asks.top(depth))

        return self.call(read)

    def seq(self, symbol: str) -> int:
        return self.call(lambda: self.relay.market.of(symbol).book.seq)

    def wait_seq(self, symbol: str, seq: int, guard_s: float = READY_GUARD_S) -> None:
        """Wait until the relay's book of ``symbol`` has applied event ``seq``."""
        deadline = time.monotonic() + guard_s
        while self.seq(symbol) < seq:
            if time.monotonic() > deadline:
                pytest.fail(f"the relay's {symbol} stayed at {self.seq(symbol)}, expected {seq}")
            time.sleep(0.05)

    def metric(self, name: str, **labels: str) -> float:
        value = self.relay.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., RunningRelay]]:
    """``start(cluster, symbols, **settings)``: a relay on ``cluster``, stopped after the test."""
    running: list[RunningRelay] = []

    def start(
        cluster: FlowCluster, symbols: list[str], partitions: int = 1, **overrides: Any
    ) -> RunningRelay:
        registry = tmp_path / "relay-symbols.yaml"
        registry.write_text(relay_registry_yaml(symbols, partitions))
        settings = RelaySettings(
            kafka_bootstrap=cluster.bootstrap,
            topic_prefix=cluster.settings.topic_prefix,
            symbols_file=registry,
            relay_port=0,
            relay_keys=RELAY_KEYS_YAML,
            relay_heartbeat_s=1.0,
            **overrides,
        )
        relay = RunningRelay(settings)
        running.append(relay)
        return relay

    yield start
    for relay in running:
        relay.stop()


def matcher_book(
    matcher: RunningMatcher, symbol: str, depth: int
) -> tuple[int, list[list[str]], list[list[str]]]:
    """The matcher's own book of ``symbol`` (call once it has committed everything): as the relay shows it."""
    book = matcher.matcher.processor.engine.book_depth(symbol)
    assert book is not None

    def levels(side: tuple[tuple[int, int, int], ...]) -> list[list[str]]:
        return [[f"{price * TICK:f}", f"{qty * LOT:f}"] for price, qty, _ in side[:depth]]

    return book.seq, levels(book.bids), levels(book.asks)


# --- the client side ------------------------------------------------------------------------------


def client_checksum(
    bids: dict[Decimal, str], asks: dict[Decimal, str], price_text: dict[Decimal, str]
) -> int:
    """docs/websocket.md's checksum, written from the doc: best 25 of each side, interleaved."""
    best_bids = sorted(bids, reverse=True)[:25]
    best_asks = sorted(asks)[:25]
    parts: list[str] = []
    for index in range(25):
        if index < len(best_bids):
            parts += [price_text[best_bids[index]], bids[best_bids[index]]]
        if index < len(best_asks):
            parts += [price_text[best_asks[index]], asks[best_asks[index]]]
    return zlib.crc32(":".join(parts).encode())


class ClientBook:
    """A client's copy of one book: snapshots replace it, deltas must follow it (``prev_seq``)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.seq: int | None = None
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}
        self.texts: dict[Decimal, str] = {}
        self.chain: list[tuple[int, int, int]] = []  # (prev_seq, seq, checksum) of every message applied

    def apply(self, message: dict[str, Any]) -> None:
        if message["type"] == "book_snapshot":
            self.bids, self.asks = {}, {}
            self._set(message)
            self.chain.append((-1, message["seq"], message["checksum"]))
        else:
            assert message["prev_seq"] == self.seq, f"gap: at {self.seq}, message from {message['prev_seq']}"
            self._set(message)
            self.chain.append((message["prev_seq"], message["seq"], message["checksum"]))
        self.seq = message["seq"]
        assert len(self.bids) <= self.depth and len(self.asks) <= self.depth
        assert client_checksum(self.bids, self.asks, self.texts) == message["checksum"]

    def _set(self, message: dict[str, Any]) -> None:
        for levels, side in ((message["bids"], self.bids), (message["asks"], self.asks)):
            for price, qty in levels:
                key = Decimal(price)
                self.texts[key] = price
                if Decimal(qty) == 0:
                    side.pop(key, None)
                else:
                    side[key] = qty

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        bids = [[self.texts[p], self.bids[p]] for p in sorted(self.bids, reverse=True)]
        asks = [[self.texts[p], self.asks[p]] for p in sorted(self.asks)]
        return bids, asks


class WsClient:
    """A synchronous WebSocket client of the relay for tests."""

    def __init__(self, url: str, **options: Any) -> None:
        # Entered at once: a test holds the client for as long as it needs it, then closes it.
        # The library's reader thread takes every frame off the socket as it comes (no bound): with
        # a bounded queue, a close while unread messages fill it waits for ever (seen with 17.x).
        options = {"max_queue": None, **options}
        self.connection: ClientConnection = connect(url, open_timeout=10, **options).__enter__()
        self.books: dict[str, ClientBook] = {}
        self.seen: list[dict[str, Any]] = []

    def send(self, **request: Any) -> None:
        self.connection.send(json.dumps(request))

    def recv(self, guard_s: float = RECV_GUARD_S) -> dict[str, Any]:
        """The next message that is not a heartbeat, applied to the client's books."""
        deadline = time.monotonic() + guard_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message within {guard_s} s")
            message: dict[str, Any] = json.loads(self.connection.recv(timeout=left))
            self.seen.append(message)
            if message["type"] in ("book", "book_snapshot"):
                self.books[message["symbol"]].apply(message)
            if message["type"] != "heartbeat":
                return message

    def recv_type(self, kind: str, guard_s: float = RECV_GUARD_S) -> dict[str, Any]:
        deadline = time.monotonic() + guard_s
        while True:
            message = self.recv(max(deadline - time.monotonic(), 0.1))
            if message["type"] == kind:
                return message

    def subscribe_book(
        self, symbol: str, depth: int = 25, resume_seq: int | None = None, book: ClientBook | None = None
    ) -> dict[str, Any]:
        """Subscribe; returns the first book message (a snapshot, or the resume delta).

        A resuming client names the seq its copy is at (``book``'s, unless ``resume_seq`` says otherwise).
        """
        book = self.books[symbol] = book or ClientBook(depth)
        request: dict[str, Any] = {"op": "subscribe", "channel": "book", "symbol": symbol, "depth": depth}
        if resume_seq is not None or book.seq is not None:
            request["resume_seq"] = book.seq if resume_seq is None else resume_seq
        self.send(**request)
        assert self.recv()["type"] == "subscribed"
        return self.recv()

    def follow_until(self, symbol: str, seq: int, guard_s: float = RECV_GUARD_S) -> None:
        """Read until the book of ``symbol`` reaches ``seq``."""
        deadline = time.monotonic() + guard_s
        while self.books[symbol].seq != seq:
            if time.monotonic() > deadline:
                pytest.fail(f"{symbol} stayed at seq {self.books[symbol].seq}, expected {seq}")
            self.recv(max(deadline - time.monotonic(), 0.1))

    def auth(self, key_id: str, secret: str, timestamp_ms: int | None = None) -> dict[str, Any]:
        timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        self.send(op="auth", key=key_id, timestamp=timestamp, signature=sign(secret, auth_text(timestamp)))
        return self.recv()

    def close(self) -> None:
        self.connection.close()
