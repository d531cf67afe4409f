"""The fan-out: who is subscribed to what, and every update encoded once and queued to each of them.

Everything here runs in the event loop's thread and never waits: an update is rendered once per
symbol (and per book depth), and the same bytes go to every subscriber. While the relay applies one
batch of the feed the fan-outs are only noted; at its end (``flush``) the clients that got the same
messages form one run, and a subscriber with nothing queued and room in its socket's buffer gets
its run through the server's ``write_now``: the run's frames made and joined once, one socket write
per client, no task switch and no await per message (the further the relay falls behind, the more
messages share a write). Any other subscriber's messages go into its bounded queue, drained by its
own writer task (relay.server) at the client's pace; a client's messages always leave in order. A queue that
overflows is a slow client: it is resynced (its queue dropped, a fresh snapshot of each of its
books queued) and, if it overflows again within the window, closed with SLOW_CONSUMER. No client
can slow the consumer or another client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

from relay import protocol
from relay.access import Access
from relay.executions import account_messages
from relay.market import Applied, Market, Ticker
from relay.metrics import RelayMetrics
from relay.protocol import Channel, CloseCode, ErrorCode, ProtocolError, Request, Units
from runtime.live_symbols import LiveRegistry

log = logging.getLogger("relay.hub")

Subscription = tuple[Channel, str | None]  # (channel, symbol); executions have no symbol
Run = tuple[list["Client"], list[bytes]]  # messages that each of these clients gets, in order
Message = tuple[bytes, int]  # a message and the time of the command behind it (0: none)
FanOut = tuple[Collection["Client"], bytes, int]  # a message to each of a set of subscribers


class Client:
    """One connection's state: its account, subscriptions and bounded queue of (bytes, command ts)."""

    def __init__(self, client_id: int, max_queue: int) -> None:
        self.id = client_id
        self.max_queue = max_queue
        self.account: str | None = None
        self.queue: deque[Message] = deque()
        self.wake = asyncio.Event()  # the writer task waits on it; the hub only sets it
        self.subscriptions: dict[Subscription, int] = {}  # the book depth, 0 for other channels
        self.resyncs: deque[float] = deque()
        self.close_code: int | None = None
        self.close_reason = ""
        self.sending_since: float | None = None  # monotonic time the writer's current send began
        self.abort: Callable[[], None] = lambda: None  # cut the connection without a closing handshake
        # Whether a message may be written to it without its writer task (see Hub.flush).
        self.writable: Callable[[], bool] = lambda: False
        self.write: Callable[[bytes], None] = lambda _data: None  # raw bytes to its socket (the server's)

    def push(self, data: bytes, ts_ns: int = 0, *, force: bool = False) -> bool:
        """Queue one message; False when the queue is full (the message is not queued)."""
        if self.close_code is not None:
            return True  # closing: nothing more is sent
        if len(self.queue) >= self.max_queue and not force:
            return False
        self.queue.append((data, ts_ns))
        self.wake.set()
        return True

    def close(self, code: int, reason: str) -> None:
        """Ask the writer to close the connection with ``code``; nothing queued is sent any more."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.queue.clear()
            self.wake.set()


class Hub:
    """Subscriptions, fan-out and slow-client policy over one :class:`Market`."""

    def __init__(
        self,
        market: Market,
        registry: LiveRegistry,
        access: Access,
        metrics: RelayMetrics,
        *,
        max_subscriptions: int,
        max_resyncs: int,
        resync_window_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
        self.registry = registry
        self.access = access
        self.metrics = metrics
        self.max_subscriptions = max_subscriptions
        self.max_resyncs = max_resyncs
        self.resync_window_s = resync_window_s
        self.clock = clock
        self.wall_clock = wall_clock
        self.clients: set[Client] = set()
        self._books: dict[str, dict[int, set[Client]]] = {}  # symbol -> depth -> subscribers
        self._channels: dict[Subscription, set[Client]] = {}  # trades, ticker, candles
        self._private: dict[str, set[Client]] = {}  # account -> executions subscribers
        self._units: dict[str, Units] = {}
        self._tickers: dict[str, Ticker] = {}  # the last ticker sent per symbol
        # Writes runs of messages, each to its clients in one go (set by the server); None: all is queued.
        self.write_now: Callable[[list[Run]], None] | None = None
        # What the current batch of the feed sends, in order: (subscribers, message, command time).
        self._fan_outs: list[FanOut] = []

    # --- clients ---------------------------------------------------------------------------------

    def connect(self, client: Client) -> None:
        self.clients.add(client)
        self.metrics.clients.set(len(self.clients))

    def disconnect(self, client: Client) -> None:
        for subscription in list(client.subscriptions):
            self._remove(client, subscription)
        self.clients.discard(client)
        self.metrics.clients.set(len(self.clients))

    def handle(self, client: Client, text: str) -> bool:
        """Serve one request frame; False when it was refused (an error message is queued)."""
        try:
            request = protocol.parse_request(text)
            self._serve(client, request)
            return True
        except ProtocolError as exc:
            self.refuse(client, exc)
            return False

    def refuse(self, client: Client, error: ProtocolError) -> None:
        self.metrics.protocol_errors.labels(error.code.value).inc()
        client.push(protocol.error(error.code, str(error), error.request_id), force=True)

    def _serve(self, client: Client, request: Request) -> None:
        if request.op == "ping":
            client.push(protocol.reply("pong", request), force=True)
        elif request.op == "auth":
            key = self.access.authenticate(request, self.wall_clock())
            client.account = key.account
            client.push(protocol.reply("authenticated", request, account=key.account), force=True)
        elif request.op == "subscribe":
            self._subscribe(client, request)
        else:
            self._unsubscribe(client, request)

    def _subscribe(self, client: Client, request: Request) -> None:
        assert request.channel is not None
        subscription: Subscription = (request.channel, request.symbol)
        if subscription in client.subscriptions:
            raise ProtocolError(ErrorCode.ALREADY_SUBSCRIBED, "already subscribed", request.id)
        if len(client.subscriptions) >= self.max_subscriptions:
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.max_subscriptions} subscriptions per connection",
                request.id,
            )
        if request.channel is Channel.EXECUTIONS:
            if client.account is None:
                raise ProtocolError(ErrorCode.NOT_AUTHENTICATED, "send an auth request first", request.id)
            client.subscriptions[subscription] = 0
            self._private.setdefault(client.account, set()).add(client)
            self._count(request.channel, 1)
            client.push(protocol.reply("subscribed", request, account=client.account), force=True)
            return
        symbol = request.symbol or ""
        units = self.units_of(symbol)
        if units is None:
            raise ProtocolError(ErrorCode.UNKNOWN_SYMBOL, f"no symbol {symbol!r}", request.id)
        depth = request.depth if request.channel is Channel.BOOK else 0
        client.subscriptions[subscription] = depth
        self._count(request.channel, 1)
        if request.channel is Channel.BOOK:
            self._books.setdefault(symbol, {}).setdefault(depth, set()).add(client)
        else:
            self._channels.setdefault(subscription, set()).add(client)
        extra = {"depth": depth} if request.channel is Channel.BOOK else {}
        client.push(protocol.reply("subscribed", request, **extra), force=True)
        for message in self._first_messages(request, symbol, units):
            client.push(message, force=True)

    def _first_messages(self, request: Request, symbol: str, units: Units) -> list[bytes]:
        """What a new subscription starts with: the book (or what a resuming client missed), the ticker."""
        market = self.market.of(symbol)
        if request.channel is Channel.BOOK:
            delta = None
            if request.resume_seq is not None and not market.gap:
                delta = market.book.delta_since(request.resume_seq, request.depth)
            if delta is None:
                return [protocol.book_snapshot(market, units, request.depth)]
            checksum = protocol.book_checksum(market, units)
            return [protocol.book_delta(market, units, request.depth, delta, checksum)]
        if request.channel is Channel.TICKER:
            return [protocol.ticker(symbol, units, market.ticker())]
        if request.channel is Channel.CANDLES:
            history = list(market.tape.candles)[-protocol.CANDLE_HISTORY :]
            return [protocol.candles(symbol, units, history)]
        return []

    def _unsubscribe(self, client: Client, request: Request) -> None:
        assert request.channel is not None
        subscription: Subscription = (request.channel, request.symbol)
        if subscription not in client.subscriptions:
            raise ProtocolError(ErrorCode.NOT_SUBSCRIBED, "not subscribed", request.id)
        self._remove(client, subscription)
        client.push(protocol.reply("unsubscribed", request), force=True)

    def _remove(self, client: Client, subscription: Subscription) -> None:
        depth = client.subscriptions.pop(subscription)
        channel, symbol = subscription
        self._count(channel, -1)
        if channel is Channel.EXECUTIONS:
            _discard(self._private, client.account or "", client)
        elif channel is Channel.BOOK:
            groups = self._books.get(symbol or "", {})
            _discard(groups, depth, client)
            if not groups:
                self._books.pop(symbol or "", None)
        else:
            _discard(self._channels, subscription, client)

    def _count(self, channel: Channel, change: int) -> None:
        self.metrics.subscriptions.labels(channel.value).inc(change)

    def units_of(self, symbol: str) -> Units | None:
        """The symbol's decimal formatting, from the live registry; None for an unknown symbol."""
        listed = self.registry.get(symbol)
        if listed is None:
            return None
        units = self._units.get(symbol)
        if units is None or (units.tick_size, units.lot_size) != (listed.tick_size, listed.lot_size):
            units = self._units[symbol] = Units(listed.tick_size, listed.lot_size)
        return units

    # --- fan-out ---------------------------------------------------------------------------------

    def on_applied(self, applied: Applied) -> None:
        """Send what one record changed to the symbol's subscribers."""
        symbol = applied.symbol
        if not (applied.advanced or applied.trades):
            return
        units = self.units_of(symbol)
        if units is None:
            return  # nobody can be subscribed to a symbol the registry does not know yet
        market = self.market.of(symbol)
        groups = self._books.get(symbol)
        if groups:
            self._send_book(applied, groups, units)
        trades = self._channels.get((Channel.TRADES, symbol))
        if trades:
            for trade in applied.trades:
                self._fan_out(trades, protocol.trade(symbol, units, trade), trade.ts_ns)
        candles = self._channels.get((Channel.CANDLES, symbol))
        if candles:
            for candle in applied.candles:
                self._fan_out(candles, protocol.candle(symbol, units, candle), market.ts_ns)
        tickers = self._channels.get((Channel.TICKER, symbol))
        if tickers:
            ticker = market.ticker()
            if _ticker_changed(self._tickers.get(symbol), ticker):
                self._tickers[symbol] = ticker
                self._fan_out(tickers, protocol.ticker(symbol, units, ticker), market.ts_ns)

    def _send_book(self, applied: Applied, groups: dict[int, set[Client]], units: Units) -> None:
        market = self.market.of(applied.symbol)
        checksum = protocol.book_checksum(market, units)
        for depth, clients in list(groups.items()):
            delta = None if applied.reset else market.book.delta_since(applied.prev_seq, depth)
            if (
                delta is None
            ):  # a new book (a snapshot was taken), or one record changed more than the log holds
                data = protocol.book_snapshot(market, units, depth)
            else:
                data = protocol.book_delta(market, units, depth, delta, checksum)
            self._fan_out(clients, data, market.ts_ns)

    def on_executions(self, report: dict[str, Any]) -> None:
        """Send each account its own events of one ``ExecutionReport`` record."""
        if not self._private:
            return
        units = self.units_of(report["symbol"])
        if units is None:
            return
        for account, data in account_messages(report, units):
            clients = self._private.get(account)
            if clients:
                self._fan_out(clients, data, report["ts_ns"])

    def heartbeat(self) -> None:
        """A heartbeat to every client, so a quiet connection can tell the relay is there."""
        self._fan_out(self.clients, protocol.heartbeat(time.time_ns()), 0)
        self.flush()

    def _fan_out(self, clients: Collection[Client], data: bytes, ts_ns: int) -> None:
        if self.write_now is None:
            self._queue(list(clients), [(data, ts_ns)])
        else:
            # Only noted: the subscribers are sorted out once per batch, at the flush.
            self._fan_outs.append((clients, data, ts_ns))

    def flush(self) -> None:
        """Send what the batch fanned out (call after each batch of the feed).

        Clients that got the same messages share one run: its frames are made and joined once, and
        each of its clients with nothing queued gets them in one socket write; any other client's go
        into its queue, in order. A subscriber set changes only between batches (a drop at an
        overflow happens here, after the runs are taken), so the noted sets are still the batch's.
        """
        fan_outs, self._fan_outs = self._fan_outs, []
        if not fan_outs or self.write_now is None:
            return
        written: list[Run] = []
        for clients, messages in _runs(fan_outs):
            direct: list[Client] = []
            queued: list[Client] = []
            for client in clients:
                if client.writable():
                    direct.append(client)
                elif client.close_code is None:
                    queued.append(client)
            if direct:
                written.append((direct, [data for data, _ in messages]))
            self._queue(queued, messages)
        if written:
            self.write_now(written)
            self._observe_lag(fan_outs)

    def _queue(self, clients: list[Client], messages: list[Message]) -> None:
        for client in clients:
            for data, ts_ns in messages:
                if not client.push(data, ts_ns):
                    # The resync's snapshots hold the book as it is now: the rest of the run is in them.
                    self._overflowed(client)
                    break

    def _observe_lag(self, fan_outs: list[FanOut]) -> None:
        now = time.time_ns()
        for _, _, ts_ns in fan_outs:
            if ts_ns:
                self.metrics.delivery_lag.observe(max(now - ts_ns, 0) / 1e9)

    # --- slow clients ----------------------------------------------------------------------------

    def _overflowed(self, client: Client) -> None:
        now = self.clock()
        while client.resyncs and client.resyncs[0] < now - self.resync_window_s:
            client.resyncs.popleft()
        if len(client.resyncs) >= self.max_resyncs:
            self.drop(client, CloseCode.SLOW_CONSUMER, "SLOW_CONSUMER: the client does not read fast enough")
            return
        client.resyncs.append(now)
        self.resync(client)

    def resync(self, client: Client) -> None:
        """Drop what the client has not read and queue a fresh start: a notice, then each book's snapshot."""
        self.metrics.resyncs.inc()
        client.queue.clear()
        client.push(protocol.encode({"type": "resync", "reason": "SLOW_CONSUMER"}), force=True)
        for (channel, symbol), depth in client.subscriptions.items():
            units = self.units_of(symbol or "")
            if channel is Channel.BOOK and units is not None:
                client.push(protocol.book_snapshot(self.market.of(symbol or ""), units, depth), force=True)

    def drop(self, client: Client, code: int, reason: str) -> None:
        """Close the client with ``code`` and forget its subscriptions."""
        if client.close_code is None:
            self.metrics.dropped.labels(reason.partition(":")[0]).inc()
            log.info("dropping client", extra={"client": client.id, "code": code, "reason": reason})
        for subscription in list(client.subscriptions):
            self._remove(client, subscription)
        client.close(code, reason)

    def stalled(self, timeout_s: float) -> list[Client]:
        """Clients whose writer has waited longer than ``timeout_s`` for one send to go out."""
        now = self.clock()
        return [c for c in self.clients if c.sending_since is not None and now - c.sending_since > timeout_s]


def _runs(fan_outs: list[FanOut]) -> list[tuple[list[Client], list[Message]]]:
    """The batch's fan-outs as runs: each the clients that get exactly the same messages, in order.

    Consecutive fan-outs to the same subscriber set (a book's deltas) make one segment; clients are
    grouped by the segments they are in, so the work per client is per segment, not per message.
    """
    segments: list[tuple[Collection[Client], list[Message]]] = []
    for clients, data, ts_ns in fan_outs:
        if segments and segments[-1][0] is clients:
            segments[-1][1].append((data, ts_ns))
        else:
            segments.append((clients, [(data, ts_ns)]))
    if len(segments) == 1:
        clients, messages = segments[0]
        return [(list(clients), messages)]
    member_of: dict[Client, list[int]] = {}
    for index, (clients, _) in enumerate(segments):
        for client in clients:
            member_of.setdefault(client, []).append(index)
    runs: dict[tuple[int, ...], list[Client]] = {}
    for client, indexes in member_of.items():
        runs.setdefault(tuple(indexes), []).append(client)
    return [
        (clients, [message for index in indexes for message in segments[index][1]])
        for indexes, clients in runs.items()
    ]


def _discard(index: dict[Any, set[Client]], key: Any, client: Client) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(client)
        if not members:
            del index[key]


def _ticker_changed(before: Ticker | None, after: Ticker) -> bool:
    """Whether a ticker says something new (its seq alone moving is not news)."""
    if before is None:
        return True
    return (before.bid, before.ask, before.last, before.volume_24h, before.halted) != (
        after.bid,
        after.ask,
        after.last,
        after.volume_24h,
        after.halted,
    )
