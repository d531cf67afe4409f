"""A symbol's L2 book as the relay keeps it, the views clients hold of it, and its checksum.

Pure: no I/O, no clock. The book is in integer ticks and lots; a client's copy is its best
``depth`` levels per side. A delta between two moments is computed, not recorded: the book keeps
an undo log of its recent level changes, so the view it had at any recent ``seq`` can be rebuilt
and compared with the view it has now. The live path (one record's delta) and the resume path
(everything a reconnecting client missed) are the same function over a shorter or longer span.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import NewType

from sortedcontainers import SortedDict

Ticks = NewType("Ticks", int)
Lots = NewType("Lots", int)
Level = tuple[Ticks, Lots]  # (price, qty) of one L2 level; qty 0 in a delta removes the level

CHECKSUM_DEPTH = 25
# Level changes the undo log keeps per symbol: how far back a reconnecting client can resume.
DEFAULT_CHANGE_LOG = 10_000


class BookSide(StrEnum):
    """The side of the book a level is on (the wire's Side of a LevelChange)."""

    BUY = "BUY"
    SELL = "SELL"


class Levels:
    """One side of the book: quantity by price, iterated best first."""

    def __init__(self, side: BookSide) -> None:
        self.side = side
        # Keyed so that ascending order is best first: bids by the negated price.
        self._sign = -1 if side is BookSide.BUY else 1
        self._by_rank: SortedDict = SortedDict()

    def qty(self, price: Ticks) -> Lots:
        """The lots resting at ``price`` (0: no level)."""
        entry = self._by_rank.get(self._sign * price)
        return Lots(0) if entry is None else entry[1]

    def set(self, price: Ticks, qty: Lots) -> Lots:
        """Set the level at ``price`` to ``qty`` (0 removes it); returns the quantity it had."""
        rank = self._sign * price
        old = self._by_rank.pop(rank, None)
        if qty:
            self._by_rank[rank] = (price, qty)
        return Lots(0) if old is None else old[1]

    def top(self, depth: int) -> list[Level]:
        """The best ``depth`` levels, best first."""
        values = self._by_rank.values()
        return list(values[:depth]) if depth < len(values) else list(values)

    def top_at(self, previous: Mapping[Ticks, Lots], depth: int) -> list[Level]:
        """The best ``depth`` levels as they were when the prices in ``previous`` had those quantities.

        Every level that is not in ``previous`` is unchanged since, so the view then is among the
        first ``depth + len(previous)`` levels now and the prices of ``previous``.
        """
        now = dict(islice(self._by_rank.values(), depth + len(previous)))
        now.update(previous)
        ranked = sorted((self._sign * price, price, qty) for price, qty in now.items() if qty)
        return [(price, qty) for _, price, qty in ranked[:depth]]

    def clear(self) -> None:
        self._by_rank.clear()

    def __len__(self) -> int:
        return len(self._by_rank)


@dataclass(frozen=True, slots=True)
class Change:
    """A level change as the undo log keeps it: what the level held before the event ``seq``."""

    seq: int
    side: BookSide
    price: Ticks
    old_qty: Lots


@dataclass
class ChangeLog:
    """The recent level changes, oldest first; they reach back to (not including) ``base``."""

    capacity: int = DEFAULT_CHANGE_LOG
    base: int = 0
    _changes: deque[Change] = field(default_factory=deque)

    def add(self, change: Change) -> None:
        if len(self._changes) >= self.capacity:
            self.base = self._changes.popleft().seq
        self._changes.append(change)

    def reset(self, seq: int) -> None:
        """Forget every change: nothing before ``seq`` can be rebuilt any more."""
        self._changes.clear()
        self.base = seq

    def covers(self, seq: int, current: int) -> bool:
        """Whether the view at ``seq`` can be rebuilt (every change after it is still here)."""
        return self.base <= seq <= current

    def previous_since(self, seq: int) -> dict[BookSide, dict[Ticks, Lots]]:
        """For each price changed after ``seq``, the quantity it had at ``seq``, by side."""
        previous: dict[BookSide, dict[Ticks, Lots]] = {BookSide.BUY: {}, BookSide.SELL: {}}
        for change in reversed(self._changes):
            if change.seq <= seq:
                break
            previous[change.side][change.price] = change.old_qty  # the earliest change wins
        return previous


@dataclass(frozen=True, slots=True)
class BookDelta:
    """What turns a client's view at ``prev_seq`` into the view at ``seq``: levels to set (0: remove)."""

    prev_seq: int
    seq: int
    bids: list[Level]
    asks: list[Level]


def view_diff(before: Iterable[Level], after: Iterable[Level]) -> list[Level]:
    """The levels that turn view ``before`` into view ``after``, best first in ``after``'s order."""
    old = dict(before)
    new = dict(after)
    changed = [(price, qty) for price, qty in new.items() if old.get(price) != qty]
    removed = [(price, Lots(0)) for price in old if price not in new]
    return changed + removed


class L2Book:
    """A symbol's public book: levels per side, the ``seq`` of the last event in it, an undo log."""

    def __init__(self, change_log: int = DEFAULT_CHANGE_LOG) -> None:
        self.bids = Levels(BookSide.BUY)
        self.asks = Levels(BookSide.SELL)
        self.seq = 0
        self.log = ChangeLog(change_log)

    def side(self, side: BookSide) -> Levels:
        return self.bids if side is BookSide.BUY else self.asks

    def set_level(self, seq: int, side: BookSide, price: Ticks, qty: Lots) -> None:
        """Apply the level change ``seq`` (the next one: the caller checks the order)."""
        old = self.side(side).set(price, qty)
        self.log.add(Change(seq, side, price, old))
        self.seq = seq

    def advance(self, seq: int) -> None:
        """Count an event that changes no level (a trade, a status change)."""
        self.seq = seq

    def load(self, seq: int, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book by a snapshot at ``seq``."""
        for levels, source in ((self.bids, bids), (self.asks, asks)):
            levels.clear()
            for price, qty in source:
                levels.set(price, qty)
        self.seq = seq
        self.log.reset(seq)

    def delta_since(self, seq: int, depth: int) -> BookDelta | None:
        """The delta from the view of ``depth`` levels at ``seq`` to the view now; None if too old."""
        if not self.log.covers(seq, self.seq):
            return None
        previous = self.log.previous_since(seq)
        bids = view_diff(self.bids.top_at(previous[BookSide.BUY], depth), self.bids.top(depth))
        asks = view_diff(self.asks.top_at(previous[BookSide.SELL], depth), self.asks.top(depth))
        return BookDelta(seq, self.seq, bids, asks)


def checksum(
    bids: list[Level], asks: list[Level], price_text: Callable[[int], str], qty_text: Callable[[int], str]
) -> int:
    """CRC32 (unsigned) of the best 25 levels, as docs/websocket.md defines the text.

    The text interleaves the sides level by level, ``bid price:bid qty:ask price:ask qty:...``,
    with each number as the decimal string the messages carry; a side with fewer levels simply
    contributes nothing past its last one. An empty book is the empty text (checksum 0).
    """
    parts: list[str] = []
    for index in range(CHECKSUM_DEPTH):
        for levels in (bids, asks):
            if index < len(levels):
                price, qty = levels[index]
                parts += (price_text(price), qty_text(qty))
    return zlib.crc32(":".join(parts).encode())
