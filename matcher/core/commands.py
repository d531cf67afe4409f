"""What the matching core is asked to do: enums, symbol parameters and commands.

Commands are immutable named tuples with readable field names; a service builds them from
the wire (Avro) and hands each one to ``MatchingEngine.apply(command, offset)``. Prices are
integer ticks and quantities integer lots: the edge has already converted and checked decimal
strings against the symbol's tick and lot sizes. Timestamps (``ts``, nanoseconds) are set by
the gateway; the core never reads a clock.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final, NamedTuple

# The largest quantity a 64-bit signed wire field can carry: "no maximum" in SymbolParams.
MAX_QTY: Final = 2**63 - 1

# The final state of a done order that had a client order id is kept for this many commands after
# the one that finished it: a retry of the order gets the same answer, and a query or cancel by
# client id finds it. After that it is forgotten, and the client order id may be used again.
# A constant of the core, not a setting: a replay must forget exactly what the original forgot.
# It bounds the state by the recent flow instead of the whole history.
CLIENT_ID_MEMORY_COMMANDS: Final = 500_000


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1  # good till cancelled: the rest of a limit order rests on the book
    IOC = 2  # immediate or cancel: the rest expires
    FOK = 3  # fill or kill: fills completely at once or expires without touching the book


class SelfTradePrevention(IntEnum):
    """What happens when an order would trade with a resting order of the same account.

    The incoming (taker) order's mode decides. No trade ever happens between them.
    """

    NONE = 0  # self-trades are allowed
    CANCEL_NEWEST = 1  # the incoming order's rest is cancelled; the resting order stays
    CANCEL_OLDEST = 2  # the resting order is cancelled; the incoming order goes on matching
    CANCEL_BOTH = 3  # both are cancelled
    DECREMENT_AND_CANCEL = 4  # the larger is reduced by the smaller, which is cancelled (both if equal)


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class SymbolParams(NamedTuple):
    """A symbol's trading parameters from the registry, already in ticks and lots."""

    symbol: str
    min_qty: int = 1
    max_qty: int = MAX_QTY
    # Orders must be priced within this many basis points of the reference price
    # (the last trade, or `reference_price` before the first trade); 0 = no band.
    band_bps: int = 0
    reference_price: int | None = None
    halted: bool = False
    # A GTC limit order is rejected (TOO_MANY_OPEN_ORDERS) when its account already has this many
    # orders resting on the symbol; 0 = no limit. The core's default is none, like the band's: the
    # registry file, not the core, chooses a bound for a venue open to strangers.
    max_open_orders: int = 0


def symbol_params_problem(params: SymbolParams) -> str | None:
    """Why these parameters cannot be used, or None when they can."""
    min_qty, max_qty, band, reference = (
        params.min_qty,
        params.max_qty,
        params.band_bps,
        params.reference_price,
    )
    if not isinstance(params.symbol, str) or not params.symbol:
        return "symbol must be a non-empty string"
    if not _is_positive_int(min_qty) or not _is_positive_int(max_qty) or max_qty < min_qty:
        return "min_qty and max_qty must be positive integers with min_qty <= max_qty"
    if type(band) is not int or band < 0:
        return "band_bps must be a non-negative integer"
    if reference is not None and not _is_positive_int(reference):
        return "reference_price must be a positive integer or None"
    if type(params.halted) is not bool:
        return "halted must be a bool"
    if type(params.max_open_orders) is not int or params.max_open_orders < 0:
        return "max_open_orders must be a non-negative integer"
    return None


def _is_positive_int(value: object) -> bool:
    return type(value) is int and value > 0


class NewOrder(NamedTuple):
    """Place an order. A limit order needs `price`; a market order must have none."""

    ts: int
    symbol: str
    account: str
    side: Side
    order_type: OrderType
    qty: int
    price: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False  # a GTC limit order that must not take: rejected if it would
    stp: SelfTradePrevention = SelfTradePrevention.NONE
    client_order_id: str | None = None  # unique per account; a repeat returns the first order's state


class Cancel(NamedTuple):
    """Cancel one open order, named by `order_id` or else by the account's `client_order_id`."""

    ts: int
    symbol: str
    account: str
    order_id: int | None = None
    client_order_id: str | None = None


class Amend(NamedTuple):
    """Change an open order's total quantity and/or price (None = keep).

    Quantity down at the same price keeps time priority; a price change or quantity up
    loses it. A quantity at or below what has already filled cancels the rest.
    """

    ts: int
    symbol: str
    account: str
    order_id: int | None = None
    client_order_id: str | None = None
    qty: int | None = None
    price: int | None = None


class CancelAll(NamedTuple):
    """Cancel every open order of `account` on `symbol`."""

    ts: int
    symbol: str
    account: str


class Halt(NamedTuple):
    """Stop trading `symbol`: new orders and amends are rejected, cancels still work."""

    ts: int
    symbol: str


class Resume(NamedTuple):
    """Resume trading a halted symbol."""

    ts: int
    symbol: str


class AddSymbol(NamedTuple):
    """Add a symbol to this partition's registry at run time."""

    ts: int
    params: SymbolParams


class QueryOrder(NamedTuple):
    """Ask for one order's state. `account` None = an operator's query (any owner)."""

    ts: int
    symbol: str
    account: str | None
    order_id: int | None = None
    client_order_id: str | None = None


class QueryOpenOrders(NamedTuple):
    """Ask for an account's open orders, on one symbol or (None) on every symbol of the partition."""

    ts: int
    account: str
    symbol: str | None = None


class QueryBook(NamedTuple):
    """Ask for a symbol's L2 book, `depth` levels per side (None = all)."""

    ts: int
    symbol: str
    depth: int | None = None


Command = (
    NewOrder
    | Cancel
    | Amend
    | CancelAll
    | Halt
    | Resume
    | AddSymbol
    | QueryOrder
    | QueryOpenOrders
    | QueryBook
)
