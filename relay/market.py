"""The market data of every symbol, built from `book` and `book-snapshots` records: pure, no I/O.

Per symbol a book (:mod:`relay.book`), a tape (last trade, 1-minute candles, 24 h volume) and the
trading status. Records are applied as the feed hands them over, in each partition's order:

- a ``BookSnapshot`` (joined from its parts) is taken as the book when the book has not started
  (the relay is booting: no delta applied yet) or has a gap; a book that follows its deltas keeps
  them, and once the feed is caught up (:meth:`Market.follow`) every book follows its deltas: a
  newer snapshot read before the deltas it covers would otherwise replace them, and two relays that
  read the topics in another order would send different sequences;
- a ``BookUpdate`` part's events apply in ``seq`` order: ``seq`` at or below the book's is already in
  it (a snapshot covered it, or the feed stepped back and reads it again), the next one applies, and
  one further ahead is a gap: the feed started too late for this symbol and must step back.

Trades also feed the tape, which may reach further back than the book (the feed reads a day of
trades for the 24 h volume); a trade is counted once, and never across a gap of the book, so a
step back cannot skip one. Everything derives from the records, never from a clock, so every relay
that read the same records holds the same market.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.book import DEFAULT_CHANGE_LOG, BookSide, L2Book, Level, Lots, Ticks

NS_PER_MINUTE = 60_000_000_000
CANDLE_NS = NS_PER_MINUTE
DAY_CANDLES = 24 * 60


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One public trade."""

    seq: int
    trade_id: int
    price: Ticks
    qty: Lots
    taker_side: BookSide
    ts_ns: int


@dataclass(slots=True)
class Candle:
    """One minute of trades: open, high, low, close in ticks, volume in lots, the number of trades."""

    start_ns: int
    open: Ticks
    high: Ticks
    low: Ticks
    close: Ticks
    volume: Lots
    trades: int

    @classmethod
    def first(cls, start_ns: int, trade: TradePrint) -> Candle:
        price = trade.price
        return cls(start_ns, price, price, price, price, trade.qty, 1)

    def add(self, trade: TradePrint) -> None:
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        self.volume = Lots(self.volume + trade.qty)
        self.trades += 1


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid and ask, the last trade, the volume of the last 24 h of candles, the status."""

    seq: int
    bid: Level | None
    ask: Level | None
    last: Level | None
    volume_24h: Lots
    halted: bool
    ts_ns: int


@dataclass
class Tape:
    """The trades of one symbol: the last one, the recent 1-minute candles and their 24 h volume."""

    seq: int = 0  # the seq of the last trade counted
    last: TradePrint | None = None
    candles: deque[Candle] = field(default_factory=lambda: deque(maxlen=DAY_CANDLES))
    volume_24h: int = 0

    def add(self, trade: TradePrint) -> Candle:
        """Count one trade; returns the candle it went into."""
        self.seq, self.last = trade.seq, trade
        start = trade.ts_ns - trade.ts_ns % CANDLE_NS
        current = self.candles[-1] if self.candles else None
        if current is not None and current.start_ns >= start:
            current.add(
                trade
            )  # a trade stamped earlier than the candle's start counts in it (no clock goes back)
        else:
            self._forget_before(start - (DAY_CANDLES - 1) * CANDLE_NS)
            current = Candle.first(start, trade)
            if len(self.candles) == self.candles.maxlen:
                self.volume_24h -= self.candles[0].volume
            self.candles.append(current)
        self.volume_24h += trade.qty
        return current

    def _forget_before(self, start_ns: int) -> None:
        while self.candles and self.candles[0].start_ns < start_ns:
            self.volume_24h -= self.candles.popleft().volume


@dataclass(frozen=True, slots=True)
class Applied:
    """What one record did to a symbol: the span of the book it advanced, new trades, a gap or a reset."""

    symbol: str
    prev_seq: int
    seq: int
    trades: tuple[TradePrint, ...] = ()
    candles: tuple[Candle, ...] = ()
    gap: bool = False
    reset: bool = False
    status_changed: bool = False

    @property
    def advanced(self) -> bool:
        return self.seq > self.prev_seq


class SymbolMarket:
    """One symbol's book, tape and status."""

    def __init__(self, symbol: str, change_log: int = DEFAULT_CHANGE_LOG) -> None:
        self.symbol = symbol
        self.book = L2Book(change_log)
        self.tape = Tape()
        self.halted = False
        self.ts_ns = 0
        self.started = False  # a delta was applied, or the feed caught up: the book follows its deltas
        self.gap = False  # an event past the next seq was seen: the book waits for a step back or a snapshot

    def take_snapshot(self, snapshot: Mapping[str, Any]) -> Applied | None:
        """Load a whole ``BookSnapshot`` if the book needs one and it is newer; the reset, else None."""
        seq = snapshot["seq"]
        if (self.started and not self.gap) or seq <= self.book.seq:
            return None
        prev = self.book.seq
        self.book.load(seq, _levels(snapshot["bids"]), _levels(snapshot["asks"]))
        self.ts_ns = max(self.ts_ns, snapshot["ts_ns"])
        self.gap = False
        return Applied(self.symbol, prev, seq, reset=True)

    def apply(self, update: Mapping[str, Any]) -> Applied:
        """Apply the events of one ``BookUpdate`` record (or part) that follow the book."""
        book, tape = self.book, self.tape
        prev, ts = book.seq, update["ts_ns"]
        trades: list[TradePrint] = []
        candles: list[Candle] = []
        status_changed = gap = False
        for name, event in update["events"]:
            seq = event["seq"]
            if seq > book.seq + 1:
                gap = True
                break  # every later event of the record is further ahead still
            if seq == book.seq + 1:
                status_changed |= self._apply_event(name, event)
            if name == "exchange.Trade" and seq > tape.seq:
                trade = TradePrint(
                    seq, event["trade_id"], event["price"], event["qty"], BookSide(event["taker_side"]), ts
                )
                trades.append(trade)
                candle = tape.add(trade)
                if not candles or candles[-1] is not candle:
                    candles.append(candle)
        if book.seq > prev:
            self.started, self.gap = True, False
            self.ts_ns = max(self.ts_ns, ts)
        self.gap |= gap
        return Applied(
            self.symbol, prev, book.seq, tuple(trades), tuple(candles), self.gap, False, status_changed
        )

    def _apply_event(self, name: str, event: Mapping[str, Any]) -> bool:
        """Apply the next event to the book; True when it changed the trading status."""
        seq = event["seq"]
        if name == "exchange.LevelChange":
            self.book.set_level(seq, BookSide(event["side"]), event["price"], event["qty"])
            return False
        self.book.advance(seq)
        if name == "exchange.TradingStatus":
            self.halted = bool(event["halted"])
            return True
        return False

    def ticker(self) -> Ticker:
        bids, asks = self.book.bids.top(1), self.book.asks.top(1)
        last = self.tape.last
        return Ticker(
            self.book.seq,
            bids[0] if bids else None,
            asks[0] if asks else None,
            None if last is None else (last.price, last.qty),
            Lots(self.tape.volume_24h),
            self.halted,
            self.ts_ns,
        )


def _levels(levels: list[Mapping[str, int]]) -> list[Level]:
    return [(Ticks(level["price"]), Lots(level["qty"])) for level in levels]


class Market:
    """Every symbol's market, created on its first record (symbols listed at runtime included)."""

    def __init__(self, change_log: int = DEFAULT_CHANGE_LOG) -> None:
        self.change_log = change_log
        self.symbols: dict[str, SymbolMarket] = {}
        self.following = False

    def of(self, symbol: str) -> SymbolMarket:
        """The symbol's market, empty (seq 0) if nothing was read of it yet."""
        market = self.symbols.get(symbol)
        if market is None:
            market = self.symbols[symbol] = SymbolMarket(symbol, self.change_log)
            market.started = self.following
        return market

    def follow(self) -> None:
        """From now on every book, a new symbol's too, takes a snapshot only across a gap (the feed has
        read every book to where it was at boot: each has its snapshot, and its deltas follow in order)."""
        self.following = True
        for market in self.symbols.values():
            market.started = True

    def take_snapshot(self, snapshot: Mapping[str, Any]) -> Applied | None:
        return self.of(snapshot["symbol"]).take_snapshot(snapshot)

    def apply(self, update: Mapping[str, Any]) -> Applied:
        return self.of(update["symbol"]).apply(update)

    def gaps(self) -> list[str]:
        """The symbols whose book waits for earlier deltas or a newer snapshot."""
        return sorted(name for name, market in self.symbols.items() if market.gap)
