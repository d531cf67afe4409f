"""The matching core: a pure, deterministic order book with price-time priority.

It imports only the standard library, and reads no clock, no randomness and no I/O: the same
commands at the same offsets always give the same events, byte for byte.

What to import (everything else is internal and may change)::

    from matcher.core import MatchingEngine, NewOrder, OrderType, Side, SymbolParams
    engine = MatchingEngine(partition, [SymbolParams("ABC", min_qty=1, max_qty=10_000)])
    events = engine.apply(NewOrder(ts, "ABC", "acct-1", Side.BUY, OrderType.LIMIT, qty=5, price=101), offset)

- Commands (``commands.py``, named tuples): NewOrder, Cancel, Amend, CancelAll, Halt, Resume,
  AddSymbol, QueryOrder, QueryOpenOrders, QueryBook; the enums Side, OrderType, TimeInForce,
  SelfTradePrevention, OrderStatus; SymbolParams (a registry entry in ticks and lots). Enum
  fields must hold members of their enum (a plain int is rejected as invalid); prices are
  positive int ticks, quantities positive int lots; ``ts`` is the gateway's time in ns.
- ``MatchingEngine(partition, symbols)``, one per ``orders`` partition:
  ``apply(command, offset) -> list[Event]`` with strictly increasing offsets (a new order's id
  is ``command_id(partition, offset)``); queries ``order_state``, ``order_by_client_id``,
  ``open_orders``, ``book_depth``, ``symbols``, ``resting_count``; state ``validate``,
  ``state_hash``, ``snapshot() -> bytes`` and ``restore(bytes)``.
- Events (``events.py``, immutable ``Record``s: fields by name, built as ``Fill.of(...)``):
  OrderAccepted, Rejected, Fill, OrderCancelled, OrderExpired, OrderAmended, OrderState,
  OpenOrders, BookDepth, SymbolAdded, and the market data Trade, BookLevel, TradingStatus (the
  types in ``MARKET_DATA``, each with a per-symbol gapless ``seq``), all in one ordered list per
  command. The event at index ``i`` of the list for offset ``o`` has the id
  ``(command_id(partition, o), i)``.
- Client order ids: a new order whose (account, client order id) is known answers with that
  order's state and creates nothing. A done (or rejected) order stays known for
  ``CLIENT_ID_MEMORY_COMMANDS`` offsets after the command that finished it, then is forgotten
  and its id may be used again; an open order stays known while it rests.
- Reason codes: ``matcher.core.reasons`` (UPPER_SNAKE strings; ``reasons.ALL`` lists them).
- ReferenceEngine (``matcher.core.reference``): the slow, obviously-correct twin the tests
  compare with, also a readable statement of the rules.
"""

from matcher.core import reasons
from matcher.core.commands import (
    CLIENT_ID_MEMORY_COMMANDS,
    MAX_QTY,
    AddSymbol,
    Amend,
    Cancel,
    CancelAll,
    Command,
    Halt,
    NewOrder,
    OrderStatus,
    OrderType,
    QueryBook,
    QueryOpenOrders,
    QueryOrder,
    Resume,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
)
from matcher.core.engine import InvariantViolation, MatchingEngine
from matcher.core.events import (
    MARKET_DATA,
    BookDepth,
    BookLevel,
    Event,
    Fill,
    OpenOrders,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderState,
    Record,
    Rejected,
    SymbolAdded,
    Trade,
    TradingStatus,
    command_id,
)
from matcher.core.protocol import Engine, EngineFactory
from matcher.core.snapshot import SnapshotError

__all__ = [
    "CLIENT_ID_MEMORY_COMMANDS",
    "MARKET_DATA",
    "MAX_QTY",
    "AddSymbol",
    "Amend",
    "BookDepth",
    "BookLevel",
    "Cancel",
    "CancelAll",
    "Command",
    "Engine",
    "EngineFactory",
    "Event",
    "Fill",
    "Halt",
    "InvariantViolation",
    "MatchingEngine",
    "NewOrder",
    "OpenOrders",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "QueryBook",
    "QueryOpenOrders",
    "QueryOrder",
    "Record",
    "Rejected",
    "Resume",
    "SelfTradePrevention",
    "Side",
    "SnapshotError",
    "SymbolAdded",
    "SymbolParams",
    "TimeInForce",
    "Trade",
    "TradingStatus",
    "command_id",
    "reasons",
]
