"""The engine's snapshot format: its whole state as bytes, canonical, and written as it is read.

Layout (version 3): ``MAGIC`` (8 bytes), the format version (unsigned 16-bit, big-endian), the
payload, then the payload's length (unsigned 64-bit, big-endian). The payload is ``marshal``
(version 2) of ``(partition, books, done)``, plain values only (int, str, bool, None, tuples and
lists of them), never of our objects, so a snapshot survives any change of the engine's classes:

- ``books``, by symbol: ``(symbol, min_qty, max_qty, band_bps, reference_price, halted,
  max_open_orders, seq, last_price, [bids, asks])``, each side its levels best first as
  ``(price, [row, ...])``, a row per resting order oldest first: ``(order_id, account, qty,
  filled, client_order_id, stp, post_only, ts, priority)``;
- ``done``, by (account, client order id): the final state of each done order the engine still
  remembers by its client order id, ``(account, client_order_id, finished_at, (ts, symbol,
  order_id, side, order_type, price, qty, filled, status))``, ``finished_at`` the offset of the
  command that finished it.

A snapshot is written in pieces (:func:`pieces`), each made when it is asked for: marshal writes
a tuple or a list as its type, its length, then its items, so the heads are written here and the
rows are marshalled some thousands at a time. The bytes are those of ``marshal.dumps`` of the
whole tuple, which never exists: a million resting orders cost a few thousand rows at a time, not
a million rows, their marshal and its compressed copy at once (the memory of the forked child
that writes snapshots, matcher/snapshots.py). Hence version 3: the length went behind the payload,
which is known only once written, and each book got its ``max_open_orders``. Version 2 had the
length in front and no limit (read as 0, none: its state was built by commands that met none, and
a replay from it must answer as the original run did), and version 1 no ``finished_at`` either
(read as 0); both are still read.

marshal is the fastest stdlib encoder of such values: a million resting orders encode or decode
in about half a second. Version 2 is used because it writes no back-references (newer versions
do, which makes encoding three times slower) and writes every string the same way whether or
not it is interned, so equal states always give equal bytes: the state hash relies on that.
"""

from __future__ import annotations

import marshal
import struct
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from enum import IntEnum
from itertools import islice
from operator import attrgetter
from typing import Any, Final, NamedTuple

from matcher.core.book import Order, OrderBook, PriceLevel
from matcher.core.commands import OrderStatus, OrderType, SelfTradePrevention, Side, SymbolParams
from matcher.core.events import OrderState

MAGIC: Final = b"XCORESNP"
VERSION: Final = 3
READABLE_VERSIONS: Final = frozenset({1, 2, 3})
_VERSION: Final = struct.Struct(">H")
_LENGTH: Final = struct.Struct(">Q")
_MARSHAL_VERSION: Final = 2
NO_OPEN_ORDER_LIMIT: Final = 0  # a book's max_open_orders in snapshots older than version 3
# marshal's heads of a tuple and a list (version 2): the type, then the length (signed 32-bit, little-endian).
_TUPLE: Final = b"("
_LIST: Final = b"["
_SIZE: Final = struct.Struct("<i")
_HEAD_BYTES: Final = 1 + _SIZE.size
# Rows marshalled in one call: big enough that the calls cost nothing, small enough that the rows
# (~130 bytes each) and their marshal stay well under a megabyte.
ROWS_PER_CALL: Final = 4096
# The pieces handed out are at least this big (unless they are the last): few calls downstream.
PIECE_BYTES: Final = 1 << 18

# Enum values as snapshots hold them (plain ints) -> the member.
_SIDES: Final[dict[int, Side]] = {m: m for m in Side}
_ORDER_TYPES: Final[dict[int, OrderType]] = {m: m for m in OrderType}
_STP_MODES: Final[dict[int, SelfTradePrevention]] = {m: m for m in SelfTradePrevention}
_STATUSES: Final[dict[str, OrderStatus]] = {m.value: m for m in OrderStatus}

_alloc: Final[Any] = object.__new__

ClientKey = tuple[str, str]  # (account, client order id)


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this engine can read."""


class State(NamedTuple):
    """An engine's whole state as restored: what ``MatchingEngine`` holds, built from a snapshot."""

    books: dict[str, OrderBook]
    orders: dict[int, Order]  # every resting order by id
    by_client_id: dict[ClientKey, Order | OrderState]
    done: deque[tuple[int, ClientKey]]  # the done orders among them by finishing offset, oldest first


# --- writing -------------------------------------------------------------------------------------


def pieces(
    partition: int,
    books: Mapping[str, OrderBook],
    by_client_id: Mapping[ClientKey, Order | OrderState],
    done: Iterable[tuple[int, ClientKey]],
) -> Iterator[bytes]:
    """The snapshot of this state in pieces (joined, they are the snapshot), each made when asked for.

    ``done`` lists every done order kept in ``by_client_id`` with the offset that finished it. The
    state must not change until the last piece is read.
    """
    yield MAGIC + _VERSION.pack(VERSION)
    length = 0
    for piece in _grouped(_payload(partition, books, by_client_id, done)):
        length += len(piece)
        yield piece
    yield _LENGTH.pack(length)


def _grouped(small: Iterable[bytes]) -> Iterator[bytes]:
    """``small`` pieces joined into ones of ``PIECE_BYTES`` at least (the last one excepted)."""
    group: list[bytes] = []
    size = 0
    for piece in small:
        group.append(piece)
        size += len(piece)
        if size >= PIECE_BYTES:
            yield b"".join(group)
            group, size = [], 0
    if group:
        yield b"".join(group)


def _payload(
    partition: int,
    books: Mapping[str, OrderBook],
    by_client_id: Mapping[ClientKey, Order | OrderState],
    done: Iterable[tuple[int, ClientKey]],
) -> Iterator[bytes]:
    """``marshal.dumps((partition, books, done), 2)``, written a piece at a time."""
    yield _head(_TUPLE, 3) + _dumps(partition) + _head(_LIST, len(books))
    for symbol in sorted(books):
        yield from _book(symbol, books[symbol])
    finished_at = dict((key, offset) for offset, key in done)
    yield _head(_LIST, len(finished_at))
    keys = iter(sorted(finished_at))
    while chunk := list(islice(keys, ROWS_PER_CALL)):
        yield _items([_done_row(key, finished_at[key], by_client_id[key]) for key in chunk])


def _book(symbol: str, book: OrderBook) -> Iterator[bytes]:
    params = (
        symbol,
        book.min_qty,
        book.max_qty,
        book.band_bps,
        book.reference_price,
        book.halted,
        book.max_open_orders,
        book.seq,
        book.last_price,
    )
    yield _head(_TUPLE, len(params) + 1) + _items(list(params)) + _head(_LIST, 2)
    for own in (book.bids, book.asks):
        yield from _side(own.levels_best_first())


def _side(levels: list[PriceLevel]) -> Iterator[bytes]:
    """A side's levels, best first: small levels marshalled a group at a time, a big one a slice
    of its orders at a time."""
    yield _head(_LIST, len(levels))
    group: list[tuple[int, list[tuple[Any, ...]]]] = []
    rows = 0
    for level in levels:
        if len(level) > ROWS_PER_CALL:
            if group:
                yield _items(group)
                group, rows = [], 0
            yield from _big_level(level)
            continue
        group.append((level.price, list(map(_order_row, level))))
        rows += len(level)
        if rows >= ROWS_PER_CALL:
            yield _items(group)
            group, rows = [], 0
    if group:
        yield _items(group)


def _big_level(level: PriceLevel) -> Iterator[bytes]:
    yield _head(_TUPLE, 2) + _dumps(level.price) + _head(_LIST, len(level))
    for start in range(0, len(level), ROWS_PER_CALL):
        yield _items(list(map(_order_row, level[start : start + ROWS_PER_CALL])))


# A resting order as a snapshot row: one C call per order (`stp._value_` is the enum's plain int).
_order_row: Final = attrgetter(
    "order_id", "account", "qty", "filled", "client_order_id", "stp._value_", "post_only", "ts", "priority"
)


def _done_row(key: ClientKey, finished_at: int, state: Order | OrderState) -> tuple[Any, ...]:
    assert type(state) is OrderState, f"client id {key}: kept as done, but the order rests"
    s = state
    fields = (s.ts, s.symbol, s.order_id, s.side, s.order_type, s.price, s.qty, s.filled)
    final = (*map(_plain, fields), s.status.value)
    return (*key, finished_at, final)


def _plain(value: object) -> object:
    """An enum member as its plain int, so that snapshots hold only ints, strings, bools and None."""
    return int(value) if isinstance(value, IntEnum) else value


def _dumps(value: int) -> bytes:
    return marshal.dumps(value, _MARSHAL_VERSION)


def _items(values: list[Any]) -> bytes:
    """The marshal of each of ``values``, one after the other (a list's marshal without its head)."""
    return marshal.dumps(values, _MARSHAL_VERSION)[_HEAD_BYTES:]


def _head(kind: bytes, length: int) -> bytes:
    return kind + _SIZE.pack(length)


# --- reading -------------------------------------------------------------------------------------


def read(data: bytes, partition: int) -> State:
    """The state held by a snapshot of ``partition``; SnapshotError for bytes that are not one,
    ValueError for one of another partition."""
    version, body = _framed(data)
    try:
        payload = marshal.loads(body)
    except (EOFError, ValueError, TypeError) as exc:
        raise SnapshotError(f"snapshot payload is corrupt: {exc}") from exc
    if not isinstance(payload, tuple):
        raise SnapshotError("snapshot payload is not a tuple")
    found, books, done = payload
    if found != partition:
        raise ValueError(f"snapshot is of partition {found}, this engine runs partition {partition}")
    if version == 1:
        done = [(account, cid, 0, state) for account, cid, state in done]
    if version < 3:
        books = [(*book[:6], NO_OPEN_ORDER_LIMIT, *book[6:]) for book in books]
    return _state(books, done)


def _framed(data: bytes) -> tuple[int, memoryview]:
    """The format version and the payload of a snapshot (not copied), its frame checked."""
    start = len(MAGIC) + _VERSION.size
    if len(data) < start or data[: len(MAGIC)] != MAGIC:
        raise SnapshotError("not a matching-core snapshot")
    (version,) = _VERSION.unpack_from(data, len(MAGIC))
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
        raise SnapshotError(f"snapshot format version {version}; this engine reads version {readable}")
    if len(data) < start + _LENGTH.size:
        raise SnapshotError("snapshot is truncated: it ends before its payload's length")
    if version < 3:  # the length in front of the payload
        (length,) = _LENGTH.unpack_from(data, start)
        start, end = start + _LENGTH.size, len(data)
    else:  # the length behind it
        end = len(data) - _LENGTH.size
        (length,) = _LENGTH.unpack_from(data, end)
    if end - start != length:
        raise SnapshotError(
            f"snapshot is truncated or padded: {end - start} payload bytes, {length} expected"
        )
    return version, memoryview(data)[start:end]


def _state(books: list[Any], done: list[Any]) -> State:
    """The engine's objects built from the books and done orders of a snapshot payload."""
    state = State({}, {}, {}, deque())
    orders, by_client_id = state.orders, state.by_client_id
    for symbol, min_qty, max_qty, band_bps, reference, halted, max_open, seq, last_price, sides in books:
        params = SymbolParams(symbol, min_qty, max_qty, band_bps, reference, halted, max_open)
        book = OrderBook(params, seq, last_price)
        state.books[symbol] = book
        for own, levels in zip((book.bids, book.asks), sides, strict=True):
            side = own.side
            for price, rows in levels:  # best price first, oldest order first
                level = own.level_at(price)
                total = 0
                for order_id, account, qty, filled, cid, stp, post_only, ts, priority in rows:
                    # What Order(...) does, without its __init__ frame (as the engine's _new_order):
                    # a third of the time of a restore.
                    order = _alloc(Order)
                    order.order_id = order_id
                    order.symbol = symbol
                    order.account = account
                    order.side = side
                    order.price = price
                    order.qty = qty
                    order.filled = filled
                    order.leaves = leaves = qty - filled
                    order.client_order_id = cid
                    order.stp = _STP_MODES[stp]
                    order.post_only = post_only
                    order.ts = ts
                    order.priority = priority
                    order.level = level
                    level.append(order)
                    total += leaves
                    orders[order_id] = order
                    book.index(order)
                    if cid is not None:
                        by_client_id[account, cid] = order
                level.total = total
    finished = []
    for account, cid, finished_at, final in done:
        ts, symbol, order_id, side, order_type, price, qty, filled, status = final
        finished.append((finished_at, (account, cid)))
        by_client_id[account, cid] = OrderState.of(
            ts,
            symbol,
            order_id,
            account,
            cid,
            _SIDES.get(side, side),
            _ORDER_TYPES.get(order_type, order_type),
            price,
            qty,
            filled,
            0,
            _STATUSES[status],
        )
    finished.sort()
    state.done.extend(finished)
    return state
