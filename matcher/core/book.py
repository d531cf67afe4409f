"""The order book's data: `Order`, `PriceLevel` (a FIFO), `Book` (one side) and `OrderBook` (one symbol).

These are plain containers; the matching rules live in ``engine.py``. They are built for
speed and size: ``__slots__`` everywhere; a level is a ``list`` subclass (a deque costs
~800 bytes even when nearly empty, and matching drops the filled makers at the front of a
level with one slice deletion per level, not one pop per maker); each side finds its best
price through a heap of keys with lazy deletion (a key whose level is gone is dropped when it
reaches the top). Keys are signed so that the smallest key is always the best price: the
price itself on the ask side, minus the price on the bid side.

The same heap gives the levels in price order without sorting them all: a walk that reads the
heap in key order (``Book.walk_best_first``) costs the levels it reaches, so a depth-10 query
or a fill-or-kill check on a book of 100k levels reads a few entries instead of sorting 100k
keys. No other index is kept beside the heap, so adding, cancelling and matching pay nothing
for it (see bench/book_order.py for the measurements that chose this).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from heapq import heapify, heappop, heappush
from itertools import islice

from matcher.core.commands import OrderStatus, OrderType, SelfTradePrevention, Side, SymbolParams
from matcher.core.events import OrderState

# How far a walk of the heap goes before it sorts every key instead (see Book.walk_best_first).
# A step of the walk costs what sorting 5 to 7 keys does (0.45 µs against 0.085 µs a key on a
# side of 150 levels, 2 µs against 0.3 µs on one of 100k). Stopping after _WALK_MIN steps plus
# one per _WALK_SHARE heap entries, a read of the whole side costs under two sorts on a small
# side and under one and a half on a big one (a fill-or-kill that reads all of 100k levels
# costs 11 % more than with one sort, bench/book_order.py). depth(n) walks only when n is
# under one in _WALK_SHARE of the levels.
_WALK_MIN = 16
_WALK_SHARE = 16


class Order:
    """A working order. `qty` is its total quantity, `filled` what has traded, `leaves` what is still open.

    `priority` is the offset of the command that put the order at the back of its level's
    queue: it increases along every level (the FIFO invariant).
    """

    __slots__ = (
        "account",
        "client_order_id",
        "filled",
        "leaves",
        "level",
        "order_id",
        "post_only",
        "price",
        "priority",
        "qty",
        "side",
        "stp",
        "symbol",
        "ts",
    )

    def __init__(
        self,
        *,
        order_id: int,
        symbol: str,
        account: str,
        side: Side,
        price: int | None,
        qty: int,
        client_order_id: str | None,
        stp: SelfTradePrevention,
        post_only: bool,
        ts: int,
        priority: int,
        filled: int = 0,
    ) -> None:
        # MatchingEngine._new_order and snapshot.read make Orders without this __init__, for speed: keep
        # the three alike.
        self.order_id = order_id
        self.symbol = symbol
        self.account = account
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = filled
        self.leaves = qty - filled
        self.client_order_id = client_order_id
        self.stp = stp
        self.post_only = post_only
        self.ts = ts
        self.priority = priority
        self.level: PriceLevel | None = None  # set while the order rests

    def state(self, status: OrderStatus | None = None, order_type: OrderType = OrderType.LIMIT) -> OrderState:
        """This order's state; `status` None = still open (NEW or PARTIALLY_FILLED)."""
        if status is None:
            status = OrderStatus.PARTIALLY_FILLED if self.filled else OrderStatus.NEW
            leaves = self.leaves
        else:
            leaves = 0
        return OrderState.of(
            self.ts,
            self.symbol,
            self.order_id,
            self.account,
            self.client_order_id,
            self.side,
            order_type,
            self.price,
            self.qty,
            self.filled,
            leaves,
            status,
        )


class PriceLevel(list[Order]):
    """The orders resting at one price, oldest first, with their total open quantity."""

    __slots__ = ("price", "total")

    def __init__(self, price: int) -> None:
        super().__init__()
        self.price = price
        self.total = 0


class Book:
    """One side of one symbol's book: signed key -> PriceLevel, plus a heap of keys for the best price."""

    __slots__ = ("heap", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = -1 if side is Side.BUY else 1
        self.levels: dict[int, PriceLevel] = {}
        self.heap: list[int] = []  # may hold keys of levels that are gone (lazy deletion)

    def best(self) -> PriceLevel | None:
        """The best level, dropping keys of levels that are gone from the top of the heap."""
        heap, levels = self.heap, self.levels
        while heap:
            level = levels.get(heap[0])
            if level is not None:
                return level
            heappop(heap)
        return None

    def level_at(self, price: int) -> PriceLevel:
        """The level at `price`, created empty when there is none."""
        key = price * self.sign
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = PriceLevel(price)
            heap = self.heap
            if len(heap) > 2 * len(self.levels) + 64:
                # Keys of emptied levels pile up when levels away from the top come and go:
                # rebuild the heap from the live keys, amortised O(1) per level created.
                heap[:] = self.levels
                heapify(heap)
            else:
                heappush(heap, key)
        return level

    def remove_level(self, level: PriceLevel) -> None:
        """Forget an empty level; its heap key is dropped lazily."""
        del self.levels[level.price * self.sign]

    def depth(self, max_levels: int | None = None) -> tuple[tuple[int, int, int], ...]:
        """(price, qty, order_count) per level, best first."""
        chosen: Iterator[PriceLevel] | list[PriceLevel]
        if max_levels is not None and max_levels * _WALK_SHARE < len(self.levels):
            chosen = islice(self.walk_best_first(), max_levels)  # the few best of many levels
        else:
            chosen = self.levels_best_first()[:max_levels]
        return tuple((level.price, level.total, len(level)) for level in chosen)

    def levels_best_first(self) -> list[PriceLevel]:
        """Every level, best price first (one sort of every key: for readers of the whole side)."""
        levels = self.levels
        return [levels[k] for k in sorted(levels)]

    def walk_best_first(self) -> Iterator[PriceLevel]:
        """The levels best price first, found as they are read: the first k cost about k log k.

        It reads the heap in key order without changing it: a second, small heap holds the
        frontier (the children of the entries read so far), so each step costs the log of
        the frontier, not of the side. Keys of levels that are gone, and a key pushed twice (a
        level emptied and made again), are skipped. A reader that goes past a share of the heap
        gets the rest from one sort of the keys, so reading a whole side costs little more
        than a sort; that sort then replaces the heap (the same keys, in an order that is also a
        heap, without the stale ones). The side must not change while the walk is read.
        """
        heap, levels = self.heap, self.levels
        size = len(heap)
        if not size:
            return
        budget = _WALK_MIN + size // _WALK_SHARE  # heap entries to read before a sort is cheaper
        frontier = [(heap[0], 0)]  # (key, index in heap), smallest key first
        last = None  # the key read last; entries come out in key order, so repeats are adjacent
        while frontier:
            key, index = heappop(frontier)
            if key != last:
                last = key
                level = levels.get(key)
                if level is not None:
                    yield level
            budget -= 1
            if not budget:
                # The live keys, sorted, are also a heap, one without the stale and repeated keys
                # that made this walk long (a level emptied and made again at the top of the book
                # leaves one per time): it becomes the heap, so the next walk starts clean.
                heap[:] = rest = sorted(levels)
                for later in rest[bisect_right(rest, key) :]:
                    yield levels[later]
                return
            child = 2 * index + 1
            if child < size:
                heappush(frontier, (heap[child], child))
                child += 1
                if child < size:
                    heappush(frontier, (heap[child], child))


class OrderBook:
    """One symbol: its registry parameters, trading state, market-data sequence and both sides.

    `by_account` indexes the resting orders by account (account -> order id -> order), so that
    what one account asks of the book (its open orders, a cancel-all, its open-order limit) costs
    its own orders, not the whole book's. Its dicts are in resting order, not order id order (an
    amend that loses priority rests the order again): readers sort them by order id.
    """

    __slots__ = (
        "asks",
        "band_bps",
        "bids",
        "by_account",
        "halted",
        "last_price",
        "max_open_orders",
        "max_qty",
        "min_qty",
        "reference_price",
        "seq",
        "symbol",
    )

    def __init__(self, params: SymbolParams, seq: int = 0, last_price: int | None = None) -> None:
        self.symbol = params.symbol
        self.min_qty = params.min_qty
        self.max_qty = params.max_qty
        self.band_bps = params.band_bps
        self.reference_price = params.reference_price
        self.halted = params.halted
        self.max_open_orders = params.max_open_orders
        self.by_account: dict[str, dict[int, Order]] = {}  # no empty dicts: an account without orders goes
        self.seq = seq  # of the last market-data event of this symbol
        self.last_price = last_price  # of the last trade
        self.bids = Book(Side.BUY)
        self.asks = Book(Side.SELL)

    def params(self) -> SymbolParams:
        return SymbolParams(
            self.symbol,
            self.min_qty,
            self.max_qty,
            self.band_bps,
            self.reference_price,
            self.halted,
            self.max_open_orders,
        )

    def index(self, order: Order) -> None:
        """Add a resting order to its account's orders."""
        owned = self.by_account.get(order.account)
        if owned is None:
            owned = self.by_account[order.account] = {}
        owned[order.order_id] = order

    def unindex(self, order: Order) -> None:
        """Take an order that stopped resting out of its account's orders."""
        owned = self.by_account[order.account]
        del owned[order.order_id]
        if not owned:
            del self.by_account[order.account]

    def owned(self, account: str) -> list[Order]:
        """The resting orders of `account`, oldest order id first."""
        owned = self.by_account.get(account)
        # Nearly sorted already (only amends move an order to the back): the sort is about linear.
        return [] if owned is None else sorted(owned.values(), key=by_order_id)

    def open_count(self, account: str) -> int:
        """How many orders `account` has resting on this book."""
        owned = self.by_account.get(account)
        return 0 if owned is None else len(owned)

    def band(self) -> tuple[int, int] | None:
        """The lowest and highest price allowed now, or None when there is no band."""
        reference = self.reference_price if self.last_price is None else self.last_price
        if not self.band_bps or reference is None:
            return None
        # |price - reference| * 10_000 <= band_bps * reference, in integers.
        width = self.band_bps * reference // 10_000
        return reference - width, reference + width


def by_order_id(order: Order) -> int:
    """The key that puts orders oldest order id first."""
    return order.order_id
