"""The WebSocket protocol (docs/websocket.md): client requests parsed, server messages rendered.

Pure: requests come in as text, messages go out as compact JSON bytes, prices and sizes as the
symbol's canonical decimal strings (never a float). A request that cannot be served becomes a
:class:`ProtocolError` with a code the client can act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from relay.book import CHECKSUM_DEPTH, BookDelta, Level, checksum
from relay.market import Candle, SymbolMarket, Ticker, TradePrint
from runtime.symbols import lots_to_qty, ticks_to_price

BOOK_DEPTHS: Final = (25, 100, 500, 1000)
DEFAULT_DEPTH: Final = 25
# Candles a `candles` subscription starts with: the last hour.
CANDLE_HISTORY: Final = 60
MAX_REQUEST_ID: Final = 1 << 53  # what a JavaScript number holds exactly
MAX_STRING_CHARS: Final = 128


class Channel(StrEnum):
    BOOK = "book"
    TRADES = "trades"
    TICKER = "ticker"
    CANDLES = "candles"
    EXECUTIONS = "executions"


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` message."""

    BAD_JSON = "BAD_JSON"
    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_OP = "UNKNOWN_OP"
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    BAD_DEPTH = "BAD_DEPTH"
    NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
    ALREADY_SUBSCRIBED = "ALREADY_SUBSCRIBED"
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTH_FAILED = "AUTH_FAILED"
    BINARY_FRAME = "BINARY_FRAME"


class CloseCode:
    """WebSocket close codes the relay uses besides the standard ones (1000, 1001, 1009, 1011)."""

    POLICY = 1008  # a flood of requests or errors
    SLOW_CONSUMER = 4001  # the client did not read fast enough, even after a resync
    NOT_READY = 4002  # the relay is not caught up (or is stopping)


class ProtocolError(Exception):
    """A request the relay refuses with an ``error`` message."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    """One client request: ``op`` with its fields, already checked for shape."""

    op: str
    id: int | None = None
    channel: Channel | None = None
    symbol: str | None = None
    depth: int = DEFAULT_DEPTH
    resume_seq: int | None = None
    key: str | None = None
    timestamp: str | None = None
    signature: str | None = None


OPS: Final = ("subscribe", "unsubscribe", "auth", "ping")
AUTH_FIELDS: Final = ("key", "timestamp", "signature")


def parse_request(text: str) -> Request:
    """The request of one text frame; ProtocolError with the reason if it is not one."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.BAD_JSON, "the frame is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a request is a JSON object")
    request_id = _request_id(message.get("id"))
    op = message.get("op")
    if op not in OPS:
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"op must be one of {', '.join(OPS)}", request_id)
    if op == "ping":
        return Request("ping", request_id)
    if op == "auth":
        key, timestamp, signature = (
            _string(message, name, request_id) for name in ("key", "timestamp", "signature")
        )
        return Request("auth", request_id, key=key, timestamp=timestamp, signature=signature)
    channel = _channel(message.get("channel"), request_id)
    symbol = None if channel is Channel.EXECUTIONS else _string(message, "symbol", request_id)
    depth = (
        _depth(message.get("depth", DEFAULT_DEPTH), request_id) if channel is Channel.BOOK else DEFAULT_DEPTH
    )
    resume = message.get("resume_seq")
    if resume is not None and (not _is_int(resume) or resume < 0 or channel is not Channel.BOOK):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "resume_seq is a book's seq (a whole number >= 0)", request_id
        )
    return Request(op, request_id, channel, symbol, depth, resume)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_id(value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < MAX_REQUEST_ID:  # type: ignore[operator]
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"id must be a whole number in 0..{MAX_REQUEST_ID - 1}")
    return value  # type: ignore[return-value]


def _string(message: Mapping[str, Any], name: str, request_id: int | None) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_STRING_CHARS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name} must be a non-empty string", request_id)
    return value


def _channel(value: object, request_id: int | None) -> Channel:
    try:
        return Channel(value if isinstance(value, str) else "")
    except ValueError:
        names = ", ".join(channel.value for channel in Channel)
        raise ProtocolError(
            ErrorCode.UNKNOWN_CHANNEL, f"channel must be one of {names}", request_id
        ) from None


def _depth(value: object, request_id: int | None) -> int:
    if value not in BOOK_DEPTHS or not _is_int(value):
        depths = ", ".join(str(d) for d in BOOK_DEPTHS)
        raise ProtocolError(ErrorCode.BAD_DEPTH, f"depth must be one of {depths}", request_id)
    return value  # type: ignore[return-value, unused-ignore]


# --- server messages -----------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """A message as the compact JSON bytes of one text frame."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def _remember(cache: dict[int, str], units: int, text: str) -> str:
    """Keep ``text`` for ``units`` in a cache that starts over once it holds ``Units.CACHE`` entries."""
    if len(cache) >= Units.CACHE:
        cache.clear()
    cache[units] = text
    return text


class Units:
    """One symbol's decimal strings of ticks and lots, exact and cached (books repeat their prices)."""

    CACHE = 65_536

    def __init__(self, tick_size: Decimal, lot_size: Decimal) -> None:
        self.tick_size, self.lot_size = tick_size, lot_size
        self._prices: dict[int, str] = {}
        self._qtys: dict[int, str] = {}

    def price(self, ticks: int) -> str:
        text = self._prices.get(ticks)
        return (
            text
            if text is not None
            else _remember(self._prices, ticks, ticks_to_price(ticks, self.tick_size))
        )

    def qty(self, lots: int) -> str:
        text = self._qtys.get(lots)
        return text if text is not None else _remember(self._qtys, lots, lots_to_qty(lots, self.lot_size))

    def levels(self, levels: list[Level]) -> list[list[str]]:
        return [[self.price(price), self.qty(qty)] for price, qty in levels]


def book_checksum(market: SymbolMarket, units: Units) -> int:
    """The checksum of the symbol's book as it stands (its best 25 levels)."""
    book = market.book
    return checksum(book.bids.top(CHECKSUM_DEPTH), book.asks.top(CHECKSUM_DEPTH), units.price, units.qty)


def book_snapshot(market: SymbolMarket, units: Units, depth: int) -> bytes:
    """A ``book_snapshot`` message: the best ``depth`` levels per side at the book's seq."""
    book = market.book
    return encode(
        {
            "type": "book_snapshot",
            "symbol": market.symbol,
            "seq": book.seq,
            "depth": depth,
            "bids": units.levels(book.bids.top(depth)),
            "asks": units.levels(book.asks.top(depth)),
            "halted": market.halted,
            "checksum": book_checksum(market, units),
            "ts": market.ts_ns,
        }
    )


def book_delta(market: SymbolMarket, units: Units, depth: int, delta: BookDelta, checksum_: int) -> bytes:
    """A ``book`` message: the levels to set (size "0" removes) to go from ``prev_seq`` to ``seq``."""
    return encode(
        {
            "type": "book",
            "symbol": market.symbol,
            "prev_seq": delta.prev_seq,
            "seq": delta.seq,
            "depth": depth,
            "bids": units.levels(delta.bids),
            "asks": units.levels(delta.asks),
            "checksum": checksum_,
            "ts": market.ts_ns,
        }
    )


def trade(symbol: str, units: Units, print_: TradePrint) -> bytes:
    return encode(
        {
            "type": "trade",
            "symbol": symbol,
            "seq": print_.seq,
            "trade_id": print_.trade_id,
            "price": units.price(print_.price),
            "qty": units.qty(print_.qty),
            "taker_side": print_.taker_side.value.lower(),
            "ts": print_.ts_ns,
        }
    )


def _level_pair(units: Units, level: Level | None) -> list[str] | None:
    return None if level is None else [units.price(level[0]), units.qty(level[1])]


def ticker(symbol: str, units: Units, tick: Ticker) -> bytes:
    return encode(
        {
            "type": "ticker",
            "symbol": symbol,
            "seq": tick.seq,
            "bid": _level_pair(units, tick.bid),
            "ask": _level_pair(units, tick.ask),
            "last": _level_pair(units, tick.last),
            "volume_24h": units.qty(tick.volume_24h),
            "halted": tick.halted,
            "ts": tick.ts_ns,
        }
    )


def _candle(units: Units, candle: Candle) -> dict[str, Any]:
    return {
        "start": candle.start_ns,
        "open": units.price(candle.open),
        "high": units.price(candle.high),
        "low": units.price(candle.low),
        "close": units.price(candle.close),
        "volume": units.qty(candle.volume),
        "trades": candle.trades,
    }


def candles(symbol: str, units: Units, history: list[Candle]) -> bytes:
    """A ``candles`` message: the most recent 1-minute candles, oldest first (the last may still grow)."""
    return encode(
        {
            "type": "candles",
            "symbol": symbol,
            "interval": "1m",
            "candles": [_candle(units, c) for c in history],
        }
    )


def candle(symbol: str, units: Units, current: Candle) -> bytes:
    """A ``candle`` message: one candle as it stands after a trade."""
    return encode({"type": "candle", "symbol": symbol, "interval": "1m", **_candle(units, current)})


def reply(kind: str, request: Request, **fields: Any) -> bytes:
    """The answer to a request (``subscribed``, ``unsubscribed``, ``authenticated``, ``pong``)."""
    message: dict[str, Any] = {"type": kind}
    if request.id is not None:
        message["id"] = request.id
    if request.channel is not None:
        message["channel"] = request.channel.value
    if request.symbol is not None:
        message["symbol"] = request.symbol
    return encode({**message, **fields})


def error(code: ErrorCode, text: str, request_id: int | None = None) -> bytes:
    message: dict[str, Any] = {"type": "error", "code": code.value, "message": text}
    if request_id is not None:
        message["id"] = request_id
    return encode(message)


def heartbeat(now_ns: int) -> bytes:
    return encode({"type": "heartbeat", "ts": now_ns})
