"""What the matching core answers: one ordered list of events per command.

Every event is an immutable record: a tuple with named fields, like a named tuple (see
``Record`` for why it is not one). Order events (``OrderAccepted`` ... ``OrderState``)
go to the ``executions`` topic and to the asking gateway; market data (``Trade``,
``BookLevel``, ``TradingStatus``, the types in ``MARKET_DATA``) goes to the ``book`` topic.
Market data is interleaved with order events in the same list, in causal order, and carries
a per-symbol ``seq`` that increases by exactly one per market-data event of that symbol.

Identity: the event at index ``i`` of the list returned for the command at ``orders`` offset
``o`` on partition ``p`` has the id ``(command_id(p, o), i)``; replays give identical ids. A new
order's id is ``command_id(p, o)`` itself.
"""

from __future__ import annotations

import collections
from operator import itemgetter
from typing import Any, ClassVar, Final, Self

from matcher.core.commands import (
    NewOrder,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
)

# Offsets take the low 48 bits of an id (2.8e14 commands per partition), the partition the rest.
OFFSET_BITS: Final = 48


def command_id(partition: int, offset: int) -> int:
    """The id of the command at `offset` of `partition`: the order id of a new order placed there."""
    return (partition << OFFSET_BITS) | offset


# The C accessor named tuples use for their fields; a property is the portable fallback.
_field_getter: Any = getattr(collections, "_tuplegetter", None) or (
    lambda index, doc: property(itemgetter(index), doc=doc)
)


class Record(tuple[Any, ...]):
    """An immutable event: a tuple whose fields, declared as annotations, read by name.

    It reads like a ``typing.NamedTuple`` (fields, repr, ``_asdict``, ``_replace``), but it is
    built from one tuple of values in field order, ``Fill((ts, symbol, ...))``, or with
    ``Fill.of(ts, symbol, ...)``. A named tuple's generated ``__new__`` is a Python function, and
    building and freeing millions of events through it costs ~5 % of a whole replay. Every
    subclass must declare ``__slots__ = ()``.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields = tuple(cls.__annotations__)
        for index, name in enumerate(cls._fields):
            setattr(cls, name, _field_getter(index, f"Alias for field number {index}"))

    @classmethod
    def of(cls, *values: Any) -> Self:
        """The record with these field values, in field order (checked for their number)."""
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} has {len(cls._fields)} fields, got {len(values)} values")
        return cls(values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({fields})"

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def _replace(self, **changes: Any) -> Self:
        return type(self)(changes.pop(name, value) for name, value in zip(self._fields, self, strict=True))


class OrderAccepted(Record):
    __slots__ = ()

    ts: int
    symbol: str
    order_id: int
    account: str
    client_order_id: str | None
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    price: int | None
    qty: int


class Rejected(Record):
    """A command was refused and changed nothing. `request` names the command's type."""

    __slots__ = ()

    ts: int
    symbol: str | None
    account: str | None
    order_id: int | None  # a new order's would-be id, or the order a cancel/amend/query named
    client_order_id: str | None
    request: str
    reason: str


class Fill(Record):
    """One match between the incoming (taker) order and one resting (maker) order."""

    __slots__ = ()

    ts: int
    symbol: str
    price: int  # always the maker's price
    qty: int
    aggressor_side: Side
    taker_order_id: int
    taker_account: str
    taker_client_order_id: str | None
    taker_leaves: int  # the taker's open quantity after this fill
    maker_order_id: int
    maker_account: str
    maker_client_order_id: str | None
    maker_leaves: int  # 0 = the maker is filled and left the book


class OrderCancelled(Record):
    """`cancelled_qty` of an order stopped working; `leaves` is still open (0 = the order is done).

    A cancel by self-trade prevention names the match it prevented, as an exchange's "expired in
    match" report does: the order on the other side of it (`counterparty_order_id`: the resting
    order when the incoming one is cut, the incoming order when the resting one is) and the mode
    that decided (`stp_mode`, the incoming order's). Both are None for every other reason.
    """

    __slots__ = ()

    ts: int
    symbol: str
    order_id: int
    account: str
    client_order_id: str | None
    cancelled_qty: int
    leaves: int
    reason: str
    counterparty_order_id: int | None
    stp_mode: SelfTradePrevention | None


class OrderExpired(Record):
    """The rest of an IOC or FOK order expired: it never rested."""

    __slots__ = ()

    ts: int
    symbol: str
    order_id: int
    account: str
    client_order_id: str | None
    expired_qty: int
    reason: str


class OrderAmended(Record):
    __slots__ = ()

    ts: int
    symbol: str
    order_id: int
    account: str
    client_order_id: str | None
    price: int
    qty: int  # the order's new total quantity, filled part included
    leaves: int
    priority_kept: bool


class OrderState(Record):
    """An order as it stands: the answer to a query, or to a repeated client order id."""

    __slots__ = ()

    ts: int  # when the order was placed
    symbol: str
    order_id: int
    account: str
    client_order_id: str | None
    side: Side
    order_type: OrderType
    price: int | None
    qty: int
    filled: int
    leaves: int
    status: OrderStatus


def rejected_order_state(command: NewOrder, order_id: int) -> OrderState:
    """The state of a rejected new order: its fields where they were valid, None (qty 0) where not."""
    side, order_type, price, qty = command.side, command.order_type, command.price, command.qty
    return OrderState.of(
        command.ts,
        command.symbol,
        order_id,
        command.account,
        command.client_order_id,
        side if isinstance(side, Side) else None,
        order_type if isinstance(order_type, OrderType) else None,
        price if type(price) is int else None,
        qty if type(qty) is int else 0,
        0,
        0,
        OrderStatus.REJECTED,
    )


class OpenOrders(Record):
    """An account's open orders, oldest order id first."""

    __slots__ = ()

    ts: int
    account: str
    symbol: str | None
    orders: tuple[OrderState, ...]


class BookDepth(Record):
    """A symbol's L2 book after market-data event `seq`; levels are (price, qty, order_count), best first."""

    __slots__ = ()

    ts: int
    symbol: str
    seq: int
    bids: tuple[tuple[int, int, int], ...]
    asks: tuple[tuple[int, int, int], ...]


class SymbolAdded(Record):
    __slots__ = ()

    ts: int
    params: SymbolParams


class Trade(Record):
    """Market data: one match, at the maker's price."""

    __slots__ = ()

    symbol: str
    seq: int
    ts: int
    price: int
    qty: int
    aggressor_side: Side
    maker_order_id: int
    taker_order_id: int


class BookLevel(Record):
    """Market data: the new state of one L2 price level; qty 0 means the level is gone."""

    __slots__ = ()

    symbol: str
    seq: int
    ts: int
    side: Side
    price: int
    qty: int
    order_count: int


class TradingStatus(Record):
    """Market data: the symbol was halted or resumed."""

    __slots__ = ()

    symbol: str
    seq: int
    ts: int
    halted: bool


Event = (
    OrderAccepted
    | Rejected
    | Fill
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | OrderState
    | OpenOrders
    | BookDepth
    | SymbolAdded
    | Trade
    | BookLevel
    | TradingStatus
)

MARKET_DATA: Final = frozenset({Trade, BookLevel, TradingStatus})
