"""`exchange replay-lobster DIR`: replay real Nasdaq order flow (LOBSTER) through the matching core.

A LOBSTER folder holds ``message.csv`` (one event per row) and ``orderbook.csv`` (the visible
book, L levels a side, after each event). The replay drives the real matching core through its
public API (new order, cancel, amend, halt, resume, book and order queries) and compares the
core's book with every orderbook row. It prints one JSON line; each ``*_match`` value is a
percentage, printed beside the count it comes from (``*_matched``).

The rules, and why (``../shared/data/lobster/README.md`` has the numbers behind them):

- **Seeding.** Orders resting before the file starts are unknown, so the book is seeded from
  orderbook row 0 with one placeholder order per level; message 0 is already inside row 0.
- **Unknown order ids.** A cancel, delete or execution of an id that the file never added takes
  its shares from the placeholder volume at its price level.
- **The window.** An L-level file carries only the events that touch the top L levels. A level
  pushed below level L is dropped (its orders are cancelled: its messages stop arriving), and a
  level that first appears below the deepest level the core holds is copied from the row as a
  placeholder order. Nothing inside the known range is ever copied: every change there must come
  from a message. Each row is compared *before* the copy, so a price that only the orderbook file
  could tell counts as a miss (why a level-1 file stays far below 100 %).
- **Executions.** A type-4 row is only the passive side of a trade. The rows of one timestamp and
  direction (a sweep; hidden executions may sit between them) become one synthetic
  immediate-or-cancel order with the summed size and the worst price as its limit. The core's
  fills, in order, are compared with the rows: the FIFO check, counted where every share of the
  level belongs to an order added inside the file. Deeper levels that the sweep's rows reveal were
  resting all along, so they are copied before the order is sent. The core runs the sweep as one
  command, so the book after an intermediate row is the book before the sweep less the core's
  fills up to that row's executed size.
- **Trades only.** Hidden executions (type 5) and crosses (type 6) never touch the visible book;
  their prices need not be on the tick grid (midpoint prints are half a cent).
- **Halts** (type 7): price -1 halts the symbol; 0 (quoting resumes) and 1 (trading resumes)
  resume it, since the core has no quote-only state.

Prices stay in LOBSTER units (dollars x 10000) everywhere except at the core's boundary, where
they become integer ticks (``--tick-units``, one cent by default). Sizes are shares, one lot each.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from matcher.core import (
    Amend,
    Cancel,
    Command,
    Event,
    Halt,
    MatchingEngine,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderType,
    Rejected,
    Resume,
    Side,
    SymbolParams,
    TimeInForce,
)
from matcher.core import Fill as CoreFill
from runtime.errors import UserError
from runtime.logs import configure_logging
from runtime.progress import Progress

# Message types (LOBSTER's column 2).
ADD = 1
CANCEL = 2  # part of an order removed: the size is the shares removed
DELETE = 3  # the whole order removed: the size is what was still resting
EXECUTE = 4  # a visible resting order traded
HIDDEN = 5  # a hidden resting order traded: a trade print only
CROSS = 6  # an auction cross: a trade print only
HALT = 7  # price -1 halt, 0 quoting resumes, 1 trading resumes
KINDS = frozenset({ADD, CANCEL, DELETE, EXECUTE, HIDDEN, CROSS, HALT})

# Direction: the side of the *resting* order.
BUY = 1
SELL = -1

# Empty orderbook levels carry these prices (with size 0).
EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999

UNITS_PER_CENT = 100  # LOBSTER prices are dollars x 10000
MESSAGE_COLUMNS = 6

_NAME = r"(?P<ticker>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})"
FOLDER_NAME = re.compile(rf"^{_NAME}_(?P<levels>\d+)$")  # e.g. GOOG_2012-06-21_10
# LOBSTER's own file names, e.g. GOOG_2012-06-21_34200000_57600000_message_10.csv
ORIGINAL_FILE = re.compile(rf"^{_NAME}_\d+_\d+_(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv$")

Quote = tuple[int, int]  # (price in LOBSTER units, visible shares)


class LobsterFormatError(UserError):
    """The folder is not LOBSTER data, or a row breaks the format."""


class Message(NamedTuple):
    """One row of message.csv."""

    time: int  # nanoseconds after midnight; the rows of one sweep share it exactly
    kind: int
    order_id: int
    size: int
    price: int  # LOBSTER units
    direction: int  # BUY or SELL: the resting order's side


class BookRow(NamedTuple):
    """One row of orderbook.csv without its empty levels, best level first on each side."""

    asks: list[Quote]
    bids: list[Quote]


Row = tuple[Message, BookRow]  # a message and the book after it


class Fill(NamedTuple):
    """One maker fill of a core command, in LOBSTER units."""

    maker: int  # the core's order id
    price: int
    qty: int


@dataclass(frozen=True)
class LobsterFolder:
    """Where one LOBSTER dataset's two files are, and what the folder says about them."""

    ticker: str
    date: str
    levels: int
    message_file: Path
    orderbook_file: Path


# ---------------------------------------------------------------------------------------------
# Reading a folder


def open_folder(path: Path) -> LobsterFolder:
    """Find the message and orderbook files of a LOBSTER folder; derive ticker, date and level count.

    The level count is the orderbook's column count / 4; a folder or file name that names another
    count is refused, since one of the two would be wrong.
    """
    if not path.is_dir():
        raise LobsterFormatError(f"{path} is not a folder")
    message_file, orderbook_file = _find_files(path)
    named = FOLDER_NAME.match(path.name) or ORIGINAL_FILE.match(message_file.name)
    ticker = named["ticker"] if named else path.name.split("_")[0]
    date = named["date"] if named else ""
    levels = _count_levels(orderbook_file)
    if named and int(named["levels"]) != levels:
        found = f"{orderbook_file.name} has {levels} levels ({4 * levels} columns)"
        raise LobsterFormatError(f"{found}; its name says {named['levels']}")
    return LobsterFolder(ticker, date, levels, message_file, orderbook_file)


def _find_files(path: Path) -> tuple[Path, Path]:
    plain = path / "message.csv", path / "orderbook.csv"
    if plain[0].is_file() and plain[1].is_file():
        return plain
    original = {m["kind"]: path / m.string for p in path.iterdir() if (m := ORIGINAL_FILE.match(p.name))}
    if set(original) == {"message", "orderbook"}:
        return original["message"], original["orderbook"]
    raise LobsterFormatError(
        f"{path} is not a LOBSTER folder: expected message.csv and orderbook.csv "
        "(or LOBSTER's *_message_N.csv and *_orderbook_N.csv)"
    )


def _count_levels(orderbook_file: Path) -> int:
    with orderbook_file.open(newline="") as f:
        columns = len(next(csv.reader(f), []))
    if not columns or columns % 4:
        raise LobsterFormatError(
            f"{orderbook_file.name} line 1 has {columns} columns; LOBSTER orderbook rows have 4 per level"
        )
    return columns // 4


def parse_message(fields: Sequence[str], line: int) -> Message:
    """Parse one message.csv row; a malformed row is a LobsterFormatError naming its line."""
    if len(fields) != MESSAGE_COLUMNS:
        raise LobsterFormatError(
            f"message.csv line {line}: {len(fields)} columns, expected {MESSAGE_COLUMNS}"
        )
    try:
        time_ns = parse_time(fields[0])
        kind, order_id, size, price, direction = map(int, fields[1:])
    except ValueError:
        raise LobsterFormatError(
            f"message.csv line {line}: not a LOBSTER message: {','.join(fields)}"
        ) from None
    if kind not in KINDS:
        raise LobsterFormatError(f"message.csv line {line}: unknown event type {kind}")
    if direction not in (BUY, SELL):
        raise LobsterFormatError(f"message.csv line {line}: direction {direction} is neither 1 nor -1")
    return Message(time_ns, kind, order_id, size, price, direction)


def parse_time(text: str) -> int:
    """Seconds after midnight as written ('34200.015105074') -> nanoseconds, exactly."""
    seconds, _, fraction = text.partition(".")
    if fraction and not fraction.isdigit():
        raise ValueError(f"not a time: {text!r}")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def parse_book_row(fields: Sequence[str], levels: int, line: int) -> BookRow:
    """Parse one orderbook.csv row (ask price, ask size, bid price, bid size per level) minus empty levels."""
    if len(fields) != 4 * levels:
        raise LobsterFormatError(f"orderbook.csv line {line}: {len(fields)} columns, expected {4 * levels}")
    try:
        values = list(map(int, fields))
    except ValueError:
        raise LobsterFormatError(f"orderbook.csv line {line}: a value is not an integer") from None
    starts = range(0, len(values), 4)
    asks = [(values[i], values[i + 1]) for i in starts if values[i] != EMPTY_ASK]
    bids = [(values[i + 2], values[i + 3]) for i in starts if values[i + 2] != EMPTY_BID]
    return BookRow(asks, bids)


def read_rows(folder: LobsterFolder) -> Iterator[Row]:
    """Stream (message, book after it) pairs; the two files must have the same number of rows."""
    with folder.message_file.open(newline="") as messages, folder.orderbook_file.open(newline="") as books:
        message_rows, book_rows = csv.reader(messages), csv.reader(books)
        line = 0
        # Not zip(strict=True): the length check below names the line where the files part.
        for line, (message_fields, book_fields) in enumerate(zip(message_rows, book_rows, strict=False), 1):
            yield parse_message(message_fields, line), parse_book_row(book_fields, folder.levels, line)
        if next(message_rows, None) is not None or next(book_rows, None) is not None:
            names = f"{folder.message_file.name} and {folder.orderbook_file.name}"
            raise LobsterFormatError(f"{names} differ in length after line {line}")
        if line == 0:
            raise LobsterFormatError(f"{folder.message_file.name} is empty")


# ---------------------------------------------------------------------------------------------
# Steps: one message, or one sweep of executions


def steps(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """Cut the stream into steps: a sweep (type-4 rows of one timestamp and direction) or a single row.

    Hidden executions with the sweep's timestamp stay inside it, since one aggressive order hits
    visible and hidden liquidity alike; any other row ends it.
    """
    sweep: list[Row] = []
    for row in rows:
        message = row[0]
        if sweep and _extends_sweep(sweep[0][0], message):
            sweep.append(row)
            continue
        if sweep:
            yield sweep
            sweep = []
        if message.kind == EXECUTE:
            sweep.append(row)
        else:
            yield [row]
    if sweep:
        yield sweep


def _extends_sweep(first: Message, message: Message) -> bool:
    if message.time != first.time:
        return False
    return message.kind == HIDDEN or (message.kind == EXECUTE and message.direction == first.direction)


# ---------------------------------------------------------------------------------------------
# The window rules and the comparison, on plain level lists (best level first)


def is_worse(price: int, than: int, side: int) -> bool:
    """True when `price` is further from the touch than `than` on `side` (a lower bid, a higher ask)."""
    return price < than if side == BUY else price > than


def beyond_known(known: Sequence[Quote], price: int, side: int) -> bool:
    """True when `price` lies below the deepest `known` level (always, when none is known)."""
    return not known or is_worse(price, known[-1][0], side)


def levels_to_copy(known: Sequence[Quote], row: Sequence[Quote], side: int) -> list[Quote]:
    """The row's levels below the deepest level the core holds: the only levels ever copied from a row."""
    first = len(row)  # the row is best first, so they are a tail of it: scan from the end
    while first and beyond_known(known, row[first - 1][0], side):
        first -= 1
    return list(row[first:])


def levels_revealed(known: Sequence[Quote], rows: Sequence[Sequence[Quote]], side: int) -> dict[int, Quote]:
    """One side's levels in consecutive `rows` below the deepest `known` level: price -> (first row, size)."""
    revealed: dict[int, Quote] = {}
    for row, levels in enumerate(rows):
        for price, qty in levels:
            if price not in revealed and beyond_known(known, price, side):
                revealed[price] = (row, qty)
    return revealed


def known_at(levels: Sequence[Quote], first_seen: dict[int, int], row: int) -> list[Quote]:
    """`levels` without those first seen at `row` or later: a revealed level is known only after its row."""
    return [quote for quote in levels if first_seen.get(quote[0], -1) < row]


def top_of_book_matches(bids: Sequence[Quote], asks: Sequence[Quote], row: BookRow) -> bool:
    """Best bid and best ask (price and size) equal the row's level 1; an empty side equals an empty side."""
    return list(bids[:1]) == row.bids[:1] and list(asks[:1]) == row.asks[:1]


def known_levels_match(bids: Sequence[Quote], asks: Sequence[Quote], row: BookRow) -> bool:
    """Every level the core holds equals the row's level at the same depth (deeper row levels aside)."""
    return row.bids[: len(bids)] == list(bids) and row.asks[: len(asks)] == list(asks)


def split_fills(fills: Sequence[Fill], sizes: Sequence[int]) -> list[list[Fill]]:
    """Cut fills, in order, into consecutive runs of `sizes` shares, splitting a fill where a run ends."""
    runs: list[list[Fill]] = []
    queue = list(fills)
    for size in sizes:
        run: list[Fill] = []
        wanted = size
        while wanted and queue:
            fill = queue[0]
            take = min(wanted, fill.qty)
            run.append(fill._replace(qty=take))
            wanted -= take
            if take == fill.qty:
                queue.pop(0)
            else:
                queue[0] = fill._replace(qty=fill.qty - take)
        runs.append(run)
    return runs


def consume(levels: Sequence[Quote], fills: Iterable[Fill], shares: int) -> list[Quote]:
    """One side's `levels` after the first `shares` shares of `fills` traded against it."""
    remaining = dict(levels)
    for fill in fills:
        if not shares:
            break
        take = min(shares, fill.qty)
        if fill.price in remaining:
            remaining[fill.price] -= take
        shares -= take
    return [(price, qty) for price, qty in remaining.items() if qty > 0]


# ---------------------------------------------------------------------------------------------
# The matching core, seen through the few commands the replay needs


class CoreVenue:
    """One symbol of the real matching core, spoken to in LOBSTER units through its public API only.

    Every order of the file and every placeholder rests for one account; synthetic marketable
    orders come from another, so self-trade prevention (off by default anyway) never steps in.
    """

    RESTING_ACCOUNT = "lobster"
    TAKER_ACCOUNT = "lobster-taker"

    def __init__(self, symbol: str, units_per_tick: int) -> None:
        self.symbol = symbol
        self.units_per_tick = units_per_tick
        self.engine = MatchingEngine(0, [SymbolParams(symbol)])  # no price band, any positive quantity
        self.offset = -1  # the `orders` offset of the last command: it makes the order ids

    def add(self, side: int, price: int, qty: int, ts: int) -> tuple[int | None, list[Fill]]:
        """A resting limit order: its core id (None when refused) and the fills it took on arrival."""
        events = self._new_order(ts, self.RESTING_ACCOUNT, side, price, qty, tif=TimeInForce.GTC)
        accepted = events[0]
        if type(accepted) is not OrderAccepted:
            return None, []
        return accepted.order_id, self._fills(events)

    def take(self, side: int, limit: int, qty: int, ts: int) -> list[Fill]:
        """An immediate-or-cancel limit order of `side`: its fills, best price and oldest order first."""
        return self._fills(self._new_order(ts, self.TAKER_ACCOUNT, side, limit, qty, tif=TimeInForce.IOC))

    def cancel(self, order_id: int, ts: int) -> bool:
        """Cancel a resting order; False when the core refused."""
        events = self._apply(Cancel(ts, self.symbol, self.RESTING_ACCOUNT, order_id))
        return type(events[0]) is OrderCancelled

    def reduce(self, order_id: int, leaves: int, ts: int) -> bool:
        """Amend a resting order down to `leaves` open shares, keeping its place; False when refused."""
        state = self.engine.order_state(order_id)
        if state is None:
            return False
        # An amend names the new total quantity, the filled part included.
        events = self._apply(
            Amend(ts, self.symbol, self.RESTING_ACCOUNT, order_id, qty=state.filled + leaves)
        )
        return type(events[0]) is OrderAmended

    def halt(self, ts: int) -> bool:
        """Halt the symbol; False when the core refused."""
        return type(self._apply(Halt(ts, self.symbol))[0]) is not Rejected

    def resume(self, ts: int) -> bool:
        """Resume the symbol; False when the core refused."""
        return type(self._apply(Resume(ts, self.symbol))[0]) is not Rejected

    def depth(self, levels: int | None) -> tuple[list[Quote], list[Quote]]:
        """The core's L2 book, `levels` per side (None = all): (bids, asks), best first."""
        book = self.engine.book_depth(self.symbol, levels)
        assert book is not None, "the symbol is registered at construction"
        units = self.units_per_tick
        return [(p * units, q) for p, q, _ in book.bids], [(p * units, q) for p, q, _ in book.asks]

    def validate(self) -> None:
        """The core's own invariant check (it raises on a broken invariant: a bug)."""
        self.engine.validate()

    def _new_order(
        self, ts: int, account: str, side: int, price: int, qty: int, *, tif: TimeInForce
    ) -> list[Event]:
        core_side = Side.BUY if side == BUY else Side.SELL
        ticks = price // self.units_per_tick  # the replay refused prices off the tick grid
        return self._apply(NewOrder(ts, self.symbol, account, core_side, OrderType.LIMIT, qty, ticks, tif))

    def _fills(self, events: list[Event]) -> list[Fill]:
        units = self.units_per_tick
        return [Fill(e.maker_order_id, e.price * units, e.qty) for e in events if type(e) is CoreFill]

    def _apply(self, command: Command) -> list[Event]:
        self.offset += 1
        return self.engine.apply(command, self.offset)


# ---------------------------------------------------------------------------------------------
# The replay


class _Slot:
    """What the replay knows about one resting order of the core."""

    __slots__ = ("lobster_id", "order_id", "price", "resting", "side", "visible")

    def __init__(
        self, order_id: int, side: int, price: int, resting: int, *, lobster_id: int | None, visible: int
    ) -> None:
        self.order_id = order_id
        self.side = side
        self.price = price
        self.resting = resting  # shares open in the core
        self.lobster_id = lobster_id  # None: placeholder volume, owned by no order of the file
        self.visible = visible  # shares the feed says the LOBSTER order still has


@dataclass
class ReplayReport:
    """The counts of one replay; `summary()` adds the match percentages."""

    ticker: str
    date: str
    levels: int
    rows: int = 0
    rows_compared: int = 0  # every row but row 0, which seeds the book
    top_of_book_matched: int = 0
    known_levels_matched: int = 0  # rows where every level the core holds equals the row's
    executions: int = 0  # type-4 rows replayed
    sweeps: int = 0  # synthetic marketable orders sent for them
    fills: int = 0  # maker fills the core gave those orders
    fifo_checked: int = 0  # executions on a level whose every share is an order added in the file
    fifo_matched: int = 0  # ... where the core filled exactly that order, at that price and size
    hidden_trades: int = 0
    cross_trades: int = 0
    halts: int = 0
    unknown_ids: int = 0  # cancels, deletes and executions of ids that the file never added
    levels_seeded: int = 0
    levels_copied: int = 0  # levels that appeared below the deepest known level
    levels_dropped: int = 0  # levels pushed below level L
    unexplained_shares: int = 0  # shares a message removed that the core's level did not hold
    unfilled_shares: int = 0  # shares of synthetic orders that the core could not fill
    crossed_adds: int = 0  # new orders that traded in the core although the feed shows them resting
    rejected: int = 0  # commands the core refused
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Every count, plus `top_of_book_match`, `known_levels_match` and `fifo_match` in percent."""
        counts = asdict(self)
        counts["top_of_book_match"] = _percent(self.top_of_book_matched, self.rows_compared)
        counts["known_levels_match"] = _percent(self.known_levels_matched, self.rows_compared)
        counts["fifo_match"] = _percent(self.fifo_matched, self.fifo_checked)
        counts["rows_per_s"] = round(self.rows / self.seconds) if self.seconds else None
        first = [
            "ticker",
            "date",
            "levels",
            "rows",
            "rows_compared",
            "top_of_book_match",
            "top_of_book_matched",
        ]
        first += ["known_levels_match", "known_levels_matched", "fifo_checked", "fifo_matched", "fifo_match"]
        return {key: counts.pop(key) for key in first} | counts


def _percent(part: int, whole: int) -> float | None:
    """A percentage with 3 decimals that never rounds a miss up to 100."""
    if not whole:
        return None
    value = round(100 * part / whole, 3)
    return min(value, 99.999) if part < whole else value


class LobsterReplay:
    """Drives one symbol of the core with a LOBSTER stream and keeps its book inside the file's window.

    The replay mirrors which core order holds which shares (`_Slot`), because the feed names
    LOBSTER order ids and the window rules act on whole price levels; the book that is compared
    is always the one the core answers to a depth query.
    """

    def __init__(self, venue: CoreVenue, levels: int, report: ReplayReport) -> None:
        self.venue = venue
        self.levels = levels
        self.report = report
        self.book: dict[int, dict[int, dict[int, _Slot]]] = {BUY: {}, SELL: {}}  # side -> price -> FIFO
        self.slots: dict[int, _Slot] = {}  # core order id -> slot
        self.known: dict[int, _Slot] = {}  # LOBSTER order id -> the slot holding its shares
        self.added: set[int] = set()
        self.halted = False
        self.ts = 0

    def run(self, rows: Iterable[Row]) -> ReplayReport:
        """Seed from the first row, replay the rest step by step, and let the core check itself."""
        started = time.perf_counter()
        stream = iter(rows)
        self.seed(next(stream))
        progress = Progress("replay-lobster: steps")
        for step in steps(stream):
            self.apply(step)
            progress.advance()
        self.venue.validate()
        self.report.seconds = round(time.perf_counter() - started, 3)
        return self.report

    def seed(self, row: Row) -> None:
        """Start from orderbook row 0: one placeholder order per level; message 0 is already in it."""
        message, book = row
        self._begin(message)
        self.report.levels_seeded += self._copy_window([], [], book)

    def apply(self, step: list[Row]) -> None:
        """Replay one step from `steps()`, comparing the core's book with each of its rows."""
        if step[0][0].kind == EXECUTE:
            self._sweep(step)
            return
        message, book = step[0]
        self._begin(message)
        if message.kind == ADD:
            self.report.crossed_adds += bool(
                self._place(message.direction, message.price, message.size, message.order_id)
            )
        elif message.kind in (CANCEL, DELETE):
            self._remove(message)
        elif message.kind == HIDDEN:
            self.report.hidden_trades += 1
        elif message.kind == CROSS:
            self.report.cross_trades += 1
        else:
            self._halt_or_resume(message)
        bids, asks = self._window_depth()
        self._compare(bids, asks, book)
        self.report.levels_copied += self._copy_window(bids, asks, book)

    # -- messages ------------------------------------------------------------------------------

    def _begin(self, message: Message) -> None:
        self.report.rows += 1
        self.ts = message.time
        if message.kind == ADD:
            self.added.add(message.order_id)
        elif message.kind in (CANCEL, DELETE, EXECUTE) and message.order_id not in self.added:
            self.report.unknown_ids += 1

    def _remove(self, message: Message) -> None:
        """Type 2 removes `size` shares of an order, type 3 the `size` it had left: the level loses `size`."""
        slot = self.known.get(message.order_id)
        if slot is None:
            self._take_unattributed(message.direction, message.price, message.size)
            return
        slot.visible -= message.size
        own = min(slot.resting, message.size)
        self._shrink(slot, own)
        self._take_unattributed(message.direction, message.price, message.size - own)
        if message.kind == DELETE or slot.visible <= 0:
            self._detach(slot)

    def _halt_or_resume(self, message: Message) -> None:
        if message.price == -1 and not self.halted:
            self.report.halts += 1
            self.halted = True
            self._count_refusal(self.venue.halt(self.ts))
        elif message.price in (0, 1) and self.halted:
            self.halted = False
            self._count_refusal(self.venue.resume(self.ts))

    def _sweep(self, rows: list[Row]) -> None:
        """The executions of one sweep: one synthetic IOC order, the FIFO check, and every row compared."""
        for message, _ in rows:
            self._begin(message)
        executions = [message for message, _ in rows if message.kind == EXECUTE]
        self.report.hidden_trades += len(rows) - len(executions)
        side = executions[0].direction  # the resting side that was hit
        first_seen = self._copy_levels_the_sweep_reveals(side, [book for _, book in rows])
        bids, asks = self.venue.depth(None)
        fills = self._send_sweep(executions)
        executed = 0
        for row, (message, book) in enumerate(rows[:-1]):
            executed += message.size if message.kind == EXECUTE else 0
            # The book after this row: the book before the sweep less the fills up to this row's size.
            traded_bids = consume(bids, fills, executed) if side == BUY else bids
            traded_asks = consume(asks, fills, executed) if side == SELL else asks
            self._compare_in_sweep(side, traded_bids, traded_asks, book, first_seen=first_seen, row=row)
        bids, asks = self._window_depth()
        book = rows[-1][1]
        self._compare_in_sweep(side, bids, asks, book, first_seen=first_seen, row=len(rows) - 1)
        self.report.levels_copied += self._copy_window(bids, asks, book)

    def _send_sweep(self, executions: list[Message]) -> list[Fill]:
        """One IOC order for the sweep's executions (summed size, worst price); check its fills for FIFO."""
        self.report.executions += len(executions)
        self.report.sweeps += 1
        side = executions[0].direction
        expected = [self._fifo_expectation(message) for message in executions]
        prices = [message.price for message in executions]
        limit = max(prices) if side == SELL else min(prices)
        total = sum(message.size for message in executions)
        self._check_tick_grid(limit)
        fills = self.venue.take(-side, limit, total, self.ts)
        self._settle(fills)
        self.report.fills += len(fills)
        self.report.unfilled_shares += total - sum(fill.qty for fill in fills)
        runs = split_fills(fills, [message.size for message in executions])
        for message, order_id, run in zip(executions, expected, runs, strict=True):
            if order_id is not None:
                self.report.fifo_checked += 1
                self.report.fifo_matched += _filled_exactly(run, order_id, message)
        for message in executions:
            self._executed(message)
        return fills

    def _compare_in_sweep(
        self,
        side: int,
        bids: list[Quote],
        asks: list[Quote],
        book: BookRow,
        *,
        first_seen: dict[int, int],
        row: int,
    ) -> None:
        """Compare one row of a sweep, counting a revealed level as known only after the row that shows it."""
        if side == BUY:
            bids = known_at(bids, first_seen, row)
        else:
            asks = known_at(asks, first_seen, row)
        self._compare(bids, asks, book)

    def _copy_levels_the_sweep_reveals(self, side: int, books: list[BookRow]) -> dict[int, int]:
        """Copy the deeper levels the sweep's rows reveal, before the sweep trades into them.

        A sweep adds no level, so a level that first shows up below the known range in one of its
        rows was resting beyond the window all along. Returns each copied price with the row that
        first shows it: the comparison counts it as known only after that row.
        """
        bids, asks = self.venue.depth(self.levels + 1)
        known = bids if side == BUY else asks
        revealed = levels_revealed(known, [book.bids if side == BUY else book.asks for book in books], side)
        for price, (_, qty) in revealed.items():
            self._place(side, price, qty, None)
        self.report.levels_copied += len(revealed)
        return {price: row for price, (row, _) in revealed.items()}

    def _fifo_expectation(self, message: Message) -> int | None:
        """The core order an execution should hit, when every share of its level is an order of the file."""
        slot = self.known.get(message.order_id)
        if slot is None or slot.price != message.price or slot.side != message.direction:
            return None
        level = self.book[slot.side][slot.price].values()
        if all(other.lobster_id is not None and other.resting == other.visible for other in level):
            return slot.order_id
        return None

    def _executed(self, message: Message) -> None:
        """Book an execution against its LOBSTER order, whichever core order the shares came from."""
        slot = self.known.get(message.order_id)
        if slot is None:
            return
        slot.visible -= message.size
        if slot.visible <= 0:
            self._detach(slot)

    # -- the window ------------------------------------------------------------------------------

    def _window_depth(self) -> tuple[list[Quote], list[Quote]]:
        """The core's book after dropping every level pushed below level L."""
        while True:
            bids, asks = self.venue.depth(self.levels + 1)
            if len(bids) <= self.levels and len(asks) <= self.levels:
                return bids, asks
            for side, quotes in ((BUY, bids), (SELL, asks)):
                for price, _ in quotes[self.levels :]:
                    self._drop_level(side, price)

    def _drop_level(self, side: int, price: int) -> None:
        self.report.levels_dropped += 1
        for slot in list(self.book[side].get(price, {}).values()):
            self._shrink(slot, slot.resting)

    def _copy_window(self, bids: list[Quote], asks: list[Quote], book: BookRow) -> int:
        """Place the row's levels below the deepest known level as placeholder orders; return how many."""
        copied = 0
        for side, known, row in ((BUY, bids, book.bids), (SELL, asks, book.asks)):
            for price, qty in levels_to_copy(known, row, side):
                self._place(side, price, qty, None)
                copied += 1
        return copied

    def _compare(self, bids: list[Quote], asks: list[Quote], book: BookRow) -> None:
        self.report.rows_compared += 1
        self.report.top_of_book_matched += top_of_book_matches(bids, asks, book)
        self.report.known_levels_matched += known_levels_match(bids, asks, book)

    # -- core orders ---------------------------------------------------------------------------

    def _place(self, side: int, price: int, qty: int, lobster_id: int | None) -> list[Fill]:
        """A resting order in the core; returns its fills (none, unless the book had diverged)."""
        self._check_tick_grid(price)
        order_id, fills = self.venue.add(side, price, qty, self.ts)
        if order_id is None:
            self.report.rejected += 1
            return []
        self._settle(fills)
        resting = qty - sum(fill.qty for fill in fills)
        if resting:
            slot = _Slot(order_id, side, price, resting, lobster_id=lobster_id, visible=qty)
            self.slots[order_id] = slot
            self.book[side].setdefault(price, {})[order_id] = slot
            if lobster_id is not None:
                self.known[lobster_id] = slot
        return fills

    def _settle(self, fills: list[Fill]) -> None:
        for fill in fills:
            slot = self.slots[fill.maker]
            slot.resting -= fill.qty
            if not slot.resting:
                self._forget(slot)

    def _shrink(self, slot: _Slot, qty: int) -> None:
        """Take `qty` shares off a core order: amend it down (it keeps its place), or cancel it."""
        if qty <= 0:
            return
        if qty < slot.resting:
            # A refused amend (the core refuses them while halted) leaves the order as it was.
            if self._count_refusal(self.venue.reduce(slot.order_id, slot.resting - qty, self.ts)):
                slot.resting -= qty
            return
        # A refused cancel means the core no longer has the order open: forgetting it is right either way.
        self._count_refusal(self.venue.cancel(slot.order_id, self.ts))
        self._forget(slot)

    def _take_unattributed(self, side: int, price: int, qty: int) -> None:
        """Remove shares no known order owns: placeholders first, then orders holding more than the feed says.

        The core may have filled another order than the feed's (see the FIFO check), so which
        order holds which shares can differ from the feed, while every level's total still agrees.
        """
        level = self.book[side].get(price, {}).values()
        placeholders = [slot for slot in level if slot.lobster_id is None]
        surplus = [slot for slot in level if slot.lobster_id is not None and slot.resting > slot.visible]
        for slot in placeholders + surplus:
            if qty <= 0:
                return
            spare = slot.resting if slot.lobster_id is None else slot.resting - slot.visible
            take = min(qty, spare)
            self._shrink(slot, take)
            qty -= take
        self.report.unexplained_shares += max(qty, 0)

    def _detach(self, slot: _Slot) -> None:
        """The LOBSTER order is done: whatever its core order still holds becomes placeholder volume."""
        if slot.lobster_id is not None:
            del self.known[slot.lobster_id]
            slot.lobster_id = None

    def _forget(self, slot: _Slot) -> None:
        del self.slots[slot.order_id]
        level = self.book[slot.side][slot.price]
        del level[slot.order_id]
        if not level:
            del self.book[slot.side][slot.price]
        self._detach(slot)

    def _check_tick_grid(self, price: int) -> None:
        """Visible orders sit on whole ticks; anything else would have to be rounded, so it is refused."""
        units = self.venue.units_per_tick
        if price % units:
            raise LobsterFormatError(
                f"line {self.report.rows}: visible price {price} is not a whole number of ticks "
                f"({units} units each; see --tick-units)"
            )

    def _count_refusal(self, accepted: bool) -> bool:
        self.report.rejected += not accepted
        return accepted


def _filled_exactly(run: list[Fill], order_id: int, message: Message) -> bool:
    """The core's fills for one execution row are that order's, at the row's price, for the row's size."""
    return sum(fill.qty for fill in run) == message.size and all(
        fill.maker == order_id and fill.price == message.price for fill in run
    )


def replay_folder(path: Path, units_per_tick: int = UNITS_PER_CENT) -> ReplayReport:
    """Replay a LOBSTER folder through the matching core and return the counts."""
    folder = open_folder(path)
    report = ReplayReport(folder.ticker, folder.date, folder.levels)
    replay = LobsterReplay(CoreVenue(folder.ticker, units_per_tick), folder.levels, report)
    return replay.run(read_rows(folder))


# ---------------------------------------------------------------------------------------------
# The subcommand


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `exchange replay-lobster`."""
    parser.add_argument("folder", type=Path, help="a LOBSTER folder: message.csv and orderbook.csv")
    parser.add_argument(
        "--tick-units",
        type=int,
        default=UNITS_PER_CENT,
        help="LOBSTER price units (dollars x 10000) in one core tick (default: %(default)s, one cent)",
    )


def run(args: argparse.Namespace) -> int:
    """Replay the folder and print its counts as one JSON line (match values in percent)."""
    if args.tick_units < 1:
        raise UserError("--tick-units must be a positive integer")
    configure_logging()  # progress on stderr; the JSON line alone on stdout
    report = replay_folder(args.folder, args.tick_units)
    sys.stdout.write(json.dumps(report.summary()) + "\n")
    return 0
