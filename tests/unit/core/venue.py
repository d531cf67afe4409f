"""A matching engine driven the way the service drives it, for tests that read as specifications.

``Venue.send`` applies a command at the next offset and, on the fast engine, checks every
invariant afterwards; ``buy``/``sell`` build orders with the defaults a test rarely cares about.
A ``Venue`` runs the fast engine unless given another ``Engine`` (the ``new_venue`` fixture runs
a test once per engine); only the fast engine has ``validate``, ``state_hash`` and snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from matcher.core import (
    BookDepth,
    Command,
    Engine,
    EngineFactory,
    Event,
    Fill,
    MatchingEngine,
    NewOrder,
    OrderAccepted,
    OrderType,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
)

SYMBOL = "ABC"


def buy(qty: int, price: int | None = None, **fields: Any) -> NewOrder:
    """A buy order: limit when `price` is given, market otherwise."""
    return _order(Side.BUY, qty, price, fields)


def sell(qty: int, price: int | None = None, **fields: Any) -> NewOrder:
    """A sell order: limit when `price` is given, market otherwise."""
    return _order(Side.SELL, qty, price, fields)


def _order(side: Side, qty: int, price: int | None, fields: dict[str, Any]) -> NewOrder:
    defaults: dict[str, Any] = {
        "ts": 1,
        "symbol": SYMBOL,
        "account": "alice",
        "order_type": OrderType.MARKET if price is None else OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "stp": SelfTradePrevention.NONE,
    }
    defaults.update(fields)
    return NewOrder(side=side, qty=qty, price=price, **defaults)


class Venue:
    """One engine (the fast one unless told), partition 0 unless told, with offsets counting up from 0."""

    def __init__(
        self,
        *symbols: SymbolParams,
        engine: EngineFactory = MatchingEngine,
        partition: int = 0,
        **engine_options: Any,
    ) -> None:
        self.engine: Engine = engine(partition, list(symbols) or [SymbolParams(SYMBOL)], **engine_options)
        self.offset = 0

    def send(self, command: Command) -> list[Event]:
        """Apply `command` at the next offset; check the invariants (the fast engine's); return its events."""
        events = self.engine.apply(command, self.offset)
        self.offset += 1
        if isinstance(self.engine, MatchingEngine):  # the reference engine has no self-check
            self.engine.validate()
        return events

    def place(self, order: NewOrder) -> int:
        """Send an order that must be accepted; return its id."""
        events = self.send(order)
        assert type(events[0]) is OrderAccepted, events
        return events[0].order_id

    def book(self, symbol: str = SYMBOL) -> BookDepth:
        depth = self.engine.book_depth(symbol)
        assert depth is not None
        return depth


NewVenue = Callable[..., Venue]
"""Makes a ``Venue`` on a given engine: ``new_venue(*symbols, partition=..., client_id_memory=...)``."""


def of_type(events: Sequence[Event], kind: type[Any]) -> list[Any]:
    """The events of one type, in order."""
    return [e for e in events if type(e) is kind]


def makers(events: Sequence[Event]) -> list[int]:
    """The maker order ids of the fills, in order."""
    return [f.maker_order_id for f in of_type(events, Fill)]
