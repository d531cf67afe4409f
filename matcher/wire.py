"""Between the wire and the core: Avro records in, core commands; core events out, Avro records.

Everything here is a pure function of its arguments, so the matcher, the recovery replay
and ``exchange verify`` turn the same command into the same bytes. The output records of
one command are:

- a ``Reply`` to the gateway that sent it (key = gateway id, its reply partition),
- an ``ExecutionReport`` on ``executions`` when the command touched an order,
- a ``BookUpdate`` on ``book`` when it changed the public book (levels, trades, status),
- a ``BookSnapshot`` on ``book-snapshots`` when it asked for one,
- a ``SymbolUpdate`` on ``symbols`` when it listed, halted or resumed a symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

from matcher.core import (
    AddSymbol,
    Amend,
    BookDepth,
    BookLevel,
    Cancel,
    CancelAll,
    Command,
    Event,
    Fill,
    Halt,
    NewOrder,
    OpenOrders,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderState,
    OrderType,
    QueryBook,
    QueryOpenOrders,
    QueryOrder,
    Rejected,
    Resume,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
    Trade,
    TradingStatus,
)
from runtime.symbols import DomainError, Symbol, parse_symbol
from schemas.parts import SPLIT_LISTS, list_at, with_lists

# An event id is (orders offset, index of the event in its command's list): unique within the
# partition, so (symbol, event_id) is unique everywhere. The layout keeps 43 bits for offsets
# (8.8e12 commands per partition, centuries at our rates) and 20 for the index: a command of more
# than 2**20 events (a cancel-all of over half a million orders, a sweep of a third of a million
# fills) is not given ids that collide with the next command's; its outputs go to the dead-letter
# topic instead (``UnwritableOutput``), the same on every replay. Widening the index would have
# cut the offsets' range 16-fold for commands no venue lets one account send (see the registry's
# limits), so the layout stays and the check guards it.
EVENT_INDEX_BITS: Final = 20
MAX_EVENTS_PER_COMMAND: Final = 1 << EVENT_INDEX_BITS

# No output record is larger than this (DESIGN.md, Bounds); the output topics take 1 MiB
# (runtime.topics). A larger output is split into parts along its lists (``split_output``).
MAX_RECORD_BYTES: Final = 512 * 1024
# Room left in each part for its `part` and `parts` numbers, set after the split is measured.
PART_NUMBERS_ROOM: Final = 16
# A book snapshot's parts after the first are keyed `SYMBOL#N`, so compaction keeps every part.
PART_KEY_SEPARATOR: Final = "#"

NOT_THIS_PARTITION: Final = "NOT_THIS_PARTITION"
INVALID_SYMBOL: Final = "INVALID_SYMBOL"


# Enum members by wire name and wire names by member: plain dict lookups on the hot path (an
# enum's own ``Side[name]`` and ``.name`` go through Python-level descriptors, several times slower).
_SIDES: Final = dict(Side.__members__)
_ORDER_TYPES: Final = dict(OrderType.__members__)
_TIMES_IN_FORCE: Final = dict(TimeInForce.__members__)
_STPS: Final = dict(SelfTradePrevention.__members__)
_SIDE_NAMES: Final = {member: name for name, member in _SIDES.items()}
_ORDER_TYPE_NAMES: Final = {member: name for name, member in _ORDER_TYPES.items()}
_TIME_IN_FORCE_NAMES: Final = {member: name for name, member in _TIMES_IN_FORCE.items()}
_STP_NAMES: Final = {member: name for name, member in _STPS.items()}


def event_id(offset: int, index: int) -> int:
    """The id of the event at ``index`` of the list the command at ``offset`` produced."""
    return (offset << EVENT_INDEX_BITS) | index


class Origin(NamedTuple):
    """Who sent a command and where its reply goes."""

    request_id: str
    gateway_id: str
    reply_partition: int
    ts_ns: int


class Decoded(NamedTuple):
    """A command off the wire: the core command (None when the core has no part in it) and its origin."""

    name: str
    origin: Origin
    command: Command | None
    symbol: str
    rejection: str | None = None  # set when the command cannot even reach the core
    listing: dict[str, Any] | None = None  # an AddSymbol's params as the registry writes them


class Output(NamedTuple):
    """One record to produce: topic role (see ``runtime.topics.TopicNames``), partition, key, record."""

    role: str
    partition: int
    key: str
    schema: str
    record: dict[str, Any]


class UnwritableOutput(Exception):
    """A command's outputs cannot be written as records (``reason`` is the dead letter's code)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- commands ------------------------------------------------------------------------------------


def decode_command(name: str, record: Mapping[str, Any], partition: int, partition_count: int) -> Decoded:
    """The core command for a decoded ``orders`` record of schema ``name``."""
    wire_origin = record["origin"]
    origin = Origin(
        wire_origin["request_id"],
        wire_origin["gateway_id"],
        wire_origin["reply_partition"],
        wire_origin["ts_ns"],
    )
    ts = origin.ts_ns
    symbol = record["symbol"]
    if name == "AddSymbol":
        return _add_symbol(origin, symbol, record["params"], partition, partition_count)
    command: Command | None
    if name == "NewOrder":
        command = NewOrder(
            ts,
            symbol,
            record["account"],
            _SIDES[record["side"]],
            _ORDER_TYPES[record["order_type"]],
            record["qty"],
            record["price"],
            _TIMES_IN_FORCE[record["time_in_force"]],
            record["post_only"],
            _STPS[record["self_trade_prevention"]],
            record["client_order_id"],
        )
    elif name == "CancelOrder":
        command = Cancel(ts, symbol, record["account"], record["order_id"], record["client_order_id"])
    elif name == "CancelAll":
        command = CancelAll(ts, symbol, record["account"])
    elif name == "AmendOrder":
        command = Amend(
            ts,
            symbol,
            record["account"],
            record["order_id"],
            record["client_order_id"],
            record["new_qty"],
            record["new_price"],
        )
    elif name == "Query":
        command = _query(ts, symbol, record)
    elif name == "HaltSymbol":
        command = Halt(ts, symbol)
    elif name == "ResumeSymbol":
        command = Resume(ts, symbol)
    elif name == "RequestBookSnapshot":
        command = None  # answered from the book as it stands; the core's state does not change
    else:
        raise ValueError(f"{name} is not a command")
    return Decoded(name, origin, command, symbol)


def _query(ts: int, symbol: str, record: Mapping[str, Any]) -> Command:
    kind = record["kind"]
    if kind == "ORDER":
        return QueryOrder(ts, symbol, record["account"], record["order_id"], record["client_order_id"])
    if kind == "OPEN_ORDERS":
        return QueryOpenOrders(ts, record["account"], symbol)
    return QueryBook(ts, symbol, record["depth"])


def _add_symbol(
    origin: Origin, symbol: str, params: Mapping[str, Any], partition: int, partition_count: int
) -> Decoded:
    try:
        parsed = parse_symbol(symbol, dict(params), partition_count)
    except DomainError as exc:
        return Decoded("AddSymbol", origin, None, symbol, f"{INVALID_SYMBOL}: {exc}")
    if parsed.partition != partition:
        return Decoded("AddSymbol", origin, None, symbol, NOT_THIS_PARTITION)
    command = AddSymbol(origin.ts_ns, core_params(parsed))
    return Decoded("AddSymbol", origin, command, symbol, None, dict(params))


def core_params(symbol: Symbol) -> SymbolParams:
    """A registry entry as the core sees it: integers in ticks and lots."""
    return SymbolParams(
        symbol.name,
        symbol.min_qty_lots,
        symbol.max_qty_lots,
        symbol.band_bps,
        symbol.reference_price_ticks,
        symbol.status == "halted",
        symbol.max_open_orders,
    )


# --- outputs -------------------------------------------------------------------------------------


Union = list[tuple[str, dict[str, Any]]]  # Avro union items as (record name, record)


def outputs_of(
    decoded: Decoded,
    offset: int,
    events: list[Event],
    partition: int,
    *,
    subject: OrderState | None = None,
    book: BookDepth | None = None,
) -> list[Output]:
    """Every record the command at ``offset`` produces, in the order they are written.

    ``subject`` is the state, after the command, of the order it placed, cancelled or amended;
    ``book`` is the symbol's book when the command asked for a book snapshot.
    """
    origin, symbol, ts = decoded.origin, decoded.symbol, decoded.origin.ts_ns
    if len(events) > MAX_EVENTS_PER_COMMAND:
        raise UnwritableOutput(
            "TOO_MANY_EVENTS",
            f"the command at offset {offset} caused {len(events)} events, over {MAX_EVENTS_PER_COMMAND}",
        )
    executions, public = _convert(offset, events)
    reply = _reply(decoded, partition, offset, events, subject)
    if book is not None:
        reply["book"] = _depth(book)
    out = [Output("replies", origin.reply_partition, origin.gateway_id, "Reply", reply)]
    if executions:
        report = {"symbol": symbol, "command_offset": offset, "ts_ns": ts, "events": executions}
        out.append(Output("executions", partition, symbol, "ExecutionReport", report))
    if public:
        update = {"symbol": symbol, "command_offset": offset, "ts_ns": ts, "events": public}
        out.append(Output("book", partition, symbol, "BookUpdate", update))
    if book is not None:
        out.append(Output("book_snapshots", partition, symbol, "BookSnapshot", book_snapshot(book)))
    if decoded.name in SYMBOL_COMMANDS and reply["result"] == "ACCEPTED":
        out.append(_symbol_update(decoded, partition, offset))
    return out


# --- bounds --------------------------------------------------------------------------------------


def split_output(
    output: Output, size_of: Callable[[Output], int], max_bytes: int = MAX_RECORD_BYTES
) -> list[Output]:
    """``output`` as parts whose encoded sizes (``size_of``) are at most ``max_bytes``.

    The parts carry the record's other fields each and its lists' items in order, cut into
    runs; concatenated by `part` they give the lists back. The cut depends only on the record,
    so a replay splits the same way. Raises :class:`UnwritableOutput` when one item alone is over.
    """
    items = [(path, item) for path in SPLIT_LISTS[output.schema] for item in list_at(output.record, path)]
    target = max_bytes - PART_NUMBERS_ROOM
    # Cut at twice the size's share of the bound first, so each run is likely to fit at once.
    runs = min(len(items), max(2, -(-2 * size_of(output) // target)))
    pieces = _fitting(output, items, runs, size_of, target)
    return [_numbered(piece, part, len(pieces)) for part, piece in enumerate(pieces)]


def _fitting(
    output: Output, items: list[tuple[str, Any]], runs: int, size_of: Callable[[Output], int], target: int
) -> list[Output]:
    if len(items) < 2:
        raise UnwritableOutput(
            "OUTPUT_TOO_LARGE", f"one item of a {output.schema} is over {target} bytes encoded"
        )
    pieces: list[Output] = []
    count = len(items)
    for run in range(runs):
        chunk = items[run * count // runs : (run + 1) * count // runs]
        piece = _with_items(output, chunk)
        pieces.extend([piece] if size_of(piece) <= target else _fitting(output, chunk, 2, size_of, target))
    return pieces


def _with_items(output: Output, items: list[tuple[str, Any]]) -> Output:
    return output._replace(record=with_lists(output.schema, output.record, items))


def _numbered(piece: Output, part: int, parts: int) -> Output:
    record = {**piece.record, "part": part, "parts": parts}
    key = piece.key
    if piece.schema == "BookSnapshot" and part:
        key = f"{key}{PART_KEY_SEPARATOR}{part}"
    return piece._replace(key=key, record=record)


# The admin commands that change what gateways and relays must know of a symbol.
SYMBOL_COMMANDS: Final = frozenset({"AddSymbol", "HaltSymbol", "ResumeSymbol"})
STATUS_KEY_SUFFIX: Final = "#status"


def _symbol_update(decoded: Decoded, partition: int, offset: int) -> Output:
    """The `symbols` record of an accepted AddSymbol (the listing) or halt/resume (the status)."""
    update: dict[str, Any] = {
        "symbol": decoded.symbol,
        "command_offset": offset,
        "ts_ns": decoded.origin.ts_ns,
        "params": decoded.listing,
        "halted": None,
    }
    key = decoded.symbol
    if decoded.name != "AddSymbol":
        update["halted"] = decoded.name == "HaltSymbol"
        key += STATUS_KEY_SUFFIX
    return Output("symbols", partition, key, "SymbolUpdate", update)


def book_snapshot(book: BookDepth) -> dict[str, Any]:
    """The BookSnapshot record of a symbol's whole book."""
    return {"symbol": book.symbol, "ts_ns": book.ts, **_depth(book)}


def _depth(book: BookDepth) -> dict[str, Any]:
    return {"seq": book.seq, "bids": _levels(book.bids), "asks": _levels(book.asks)}


def _levels(levels: Iterable[tuple[int, int, int]]) -> list[dict[str, int]]:
    return [{"price": p, "qty": q, "order_count": n} for p, q, n in levels]


def _convert(offset: int, events: list[Event]) -> tuple[Union, Union]:
    """The private execution events and the public market data of one command's events."""
    executions: Union = []
    public: Union = []
    fill_id = -1
    for index, event in enumerate(events):
        kind = type(event)
        eid = (offset << EVENT_INDEX_BITS) | index
        if kind is BookLevel:
            public.append(("exchange.LevelChange", _level_change(event)))  # type: ignore[arg-type]
        elif kind is Trade:
            # A trade follows the fill it reports, whose event id is also the trade's id.
            public.append(("exchange.Trade", _trade(event, fill_id)))  # type: ignore[arg-type]
        elif kind is TradingStatus:
            status: Any = event
            public.append(("exchange.TradingStatus", {"seq": status.seq, "halted": status.halted}))
        else:
            if kind is Fill:
                fill_id = eid
            execution = _execution(event, eid)
            if execution is not None:
                executions.append(execution)
    return executions, public


def _level_change(level: BookLevel) -> dict[str, Any]:
    return {
        "seq": level.seq,
        "side": _SIDE_NAMES[level.side],
        "price": level.price,
        "qty": level.qty,
        "order_count": level.order_count,
    }


def _trade(trade: Trade, trade_id: int) -> dict[str, Any]:
    return {
        "seq": trade.seq,
        "trade_id": trade_id,
        "price": trade.price,
        "qty": trade.qty,
        "taker_side": _SIDE_NAMES[trade.aggressor_side],
    }


# Order events as execution records. Every field of the core event travels but the command's
# context (timestamp and symbol), which the ExecutionReport around the events carries once.


def _accepted(e: OrderAccepted, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "order_id": e.order_id,
        "account": e.account,
        "client_order_id": e.client_order_id,
        "side": _SIDE_NAMES[e.side],
        "order_type": _ORDER_TYPE_NAMES[e.order_type],
        "time_in_force": _TIME_IN_FORCE_NAMES[e.time_in_force],
        "price": e.price,
        "qty": e.qty,
    }


def _filled(e: Fill, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "price": e.price,
        "qty": e.qty,
        "aggressor_side": _SIDE_NAMES[e.aggressor_side],
        "taker_order_id": e.taker_order_id,
        "taker_account": e.taker_account,
        "taker_client_order_id": e.taker_client_order_id,
        "taker_leaves": e.taker_leaves,
        "maker_order_id": e.maker_order_id,
        "maker_account": e.maker_account,
        "maker_client_order_id": e.maker_client_order_id,
        "maker_leaves": e.maker_leaves,
    }


def _cancelled(e: OrderCancelled, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "order_id": e.order_id,
        "account": e.account,
        "client_order_id": e.client_order_id,
        "cancelled_qty": e.cancelled_qty,
        "leaves": e.leaves,
        "reason": e.reason,
        "counterparty_order_id": e.counterparty_order_id,
        "stp_mode": None if e.stp_mode is None else _STP_NAMES[e.stp_mode],
    }


def _expired(e: OrderExpired, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "order_id": e.order_id,
        "account": e.account,
        "client_order_id": e.client_order_id,
        "expired_qty": e.expired_qty,
        "reason": e.reason,
    }


def _amended(e: OrderAmended, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "order_id": e.order_id,
        "account": e.account,
        "client_order_id": e.client_order_id,
        "price": e.price,
        "qty": e.qty,
        "leaves": e.leaves,
        "priority_kept": e.priority_kept,
    }


def _rejected(e: Rejected, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "request": e.request,
        "account": e.account,
        "order_id": e.order_id,
        "client_order_id": e.client_order_id,
        "reason": e.reason,
    }


_EXECUTIONS: dict[type, tuple[str, Callable[[Any, int], dict[str, Any]]]] = {
    OrderAccepted: ("exchange.OrderAccepted", _accepted),
    Fill: ("exchange.OrderFilled", _filled),
    OrderCancelled: ("exchange.OrderCancelled", _cancelled),
    OrderExpired: ("exchange.OrderExpired", _expired),
    OrderAmended: ("exchange.OrderAmended", _amended),
    Rejected: ("exchange.CommandRejected", _rejected),
}


def _execution(event: Event, eid: int) -> tuple[str, dict[str, Any]] | None:
    """The execution record of an order event; None for what only the reply carries (query answers)."""
    spec = _EXECUTIONS.get(type(event))
    if spec is None or (type(event) is Rejected and event.request.startswith("Query")):
        return None
    name, build = spec
    return name, build(event, eid)


def _reply(
    decoded: Decoded, partition: int, offset: int, events: list[Event], subject: OrderState | None
) -> dict[str, Any]:
    rejected = decoded.rejection or _rejection(events)
    orders: list[dict[str, Any]] = [] if subject is None else [order_state(subject)]
    fills: list[dict[str, Any]] = []
    prevented: list[dict[str, Any]] = []
    book: dict[str, Any] | None = None
    for index, event in enumerate(events):
        kind = type(event)
        if kind is OrderState:
            orders.append(order_state(event))  # type: ignore[arg-type]
        elif kind is OpenOrders:
            orders.extend(order_state(o) for o in event.orders)  # type: ignore[union-attr]
        elif kind is BookDepth:
            book = _depth(event)  # type: ignore[arg-type]
        elif kind is Fill:
            fills.append(_reply_fill(event, event_id(offset, index)))  # type: ignore[arg-type]
        elif kind is OrderCancelled and event.stp_mode is not None:  # type: ignore[union-attr]
            prevented.append(_prevented_match(event, event_id(offset, index)))  # type: ignore[arg-type]
    reason, _, _ = (rejected or "").partition(":")
    return {
        "request_id": decoded.origin.request_id,
        "symbol": decoded.symbol,
        "partition": partition,
        "command_offset": offset,
        "ts_ns": decoded.origin.ts_ns,
        "result": "REJECTED" if rejected else "ACCEPTED",
        "reason": reason or None,
        "orders": orders,
        "fills": fills,
        "prevented_matches": prevented,
        "book": book,
    }


def _rejection(events: list[Event]) -> str | None:
    # A command is rejected when the core refused it outright: its only event is the rejection.
    if len(events) == 1 and type(events[0]) is Rejected:
        return events[0].reason
    return None


def _reply_fill(fill: Fill, eid: int) -> dict[str, Any]:
    return {
        "event_id": eid,
        "order_id": fill.taker_order_id,
        "counterparty_order_id": fill.maker_order_id,
        "price": fill.price,
        "qty": fill.qty,
        "liquidity": "TAKER",
    }


def _prevented_match(cancel: OrderCancelled, eid: int) -> dict[str, Any]:
    """A self-trade prevention cancel as the Reply lists it."""
    return {
        "event_id": eid,
        "order_id": cancel.order_id,
        "counterparty_order_id": cancel.counterparty_order_id,
        "cancelled_qty": cancel.cancelled_qty,
        "stp_mode": _STP_NAMES[cancel.stp_mode],  # type: ignore[index]
    }


def order_state(state: OrderState) -> dict[str, Any]:
    """The wire form of an order's state."""
    return {
        "order_id": state.order_id,
        "client_order_id": state.client_order_id or "",
        "account": state.account,
        "side": _SIDE_NAMES[state.side],
        "order_type": _ORDER_TYPE_NAMES[state.order_type],
        "price": state.price,
        "qty": state.qty,
        "filled": state.filled,
        "remaining": state.leaves,
        "status": str(state.status),
        "ts_ns": state.ts,
    }
