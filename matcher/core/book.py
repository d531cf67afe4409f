"""The order book's data: `Order`, `PriceLevel` (a FIFO), `Book` (one side) and `OrderBook` (one symbol).

These are plain containers; the matching rules live in ``engine.py``. They are built for
speed and size: ``__slots__`` everywhere; a level is a ``list`` subclass (a deque costs
~800 bytes even when nearly empty, and matching drops the filled makers at the front of a
level with one slice deletion per level, not one pop per maker); each side finds its best
price through a heap of keys with lazy deletion (a key whose level is gone is dropped when it
reaches the top). Keys are signed so that the smallest key is always the best price: the
price itself on the ask side, minus the price on the bid side.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush

from matcher.core.commands import OrderStatus, OrderType, SelfTradePrevention, Side, SymbolParams
from matcher.core.events import OrderState


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
        # MatchingEngine._new_order and _rebuild make Orders without this __init__, for speed: keep
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
        levels = self.levels
        keys = sorted(levels)
        if max_levels is not None:
            keys = keys[:max_levels]
        return tuple((levels[k].price, levels[k].total, len(levels[k])) for k in keys)

    def levels_best_first(self) -> list[PriceLevel]:
        """Every level, best price first."""
        levels = self.levels
        return [levels[k] for k in sorted(levels)]


class OrderBook:
    """One symbol: its registry parameters, trading state, market-data sequence and both sides."""

    __slots__ = (
        "asks",
        "band_bps",
        "bids",
        "halted",
        "last_price",
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
        self.seq = seq  # of the last market-data event of this symbol
        self.last_price = last_price  # of the last trade
        self.bids = Book(Side.BUY)
        self.asks = Book(Side.SELL)

    def params(self) -> SymbolParams:
        return SymbolParams(
            self.symbol, self.min_qty, self.max_qty, self.band_bps, self.reference_price, self.halted
        )

    def band(self) -> tuple[int, int] | None:
        """The lowest and highest price allowed now, or None when there is no band."""
        reference = self.reference_price if self.last_price is None else self.last_price
        if not self.band_bps or reference is None:
            return None
        # |price - reference| * 10_000 <= band_bps * reference, in integers.
        width = self.band_bps * reference // 10_000
        return reference - width, reference + width
