"""ReferenceEngine: a small, slow, obviously-correct twin of MatchingEngine, for the tests.

It answers every command with the same events as the fast engine, but keeps its state in
the plainest form: one list of resting orders per symbol in arrival (priority) order, with the
book's levels, best prices and totals recomputed from that list whenever they are needed.
Nothing here is shared with the fast engine except the commands, events and reason codes, so
the model-based tests compare two independent readings of the same rules:

- New order checks, in order: duplicate client order id (answers the first order's state),
  unknown symbol, side, halted, order type, time in force, self-trade prevention mode,
  quantity (type, min, max), price (a limit needs a positive integer, a market order none),
  post-only (only for GTC limits), price band, post-only that would take, and last the symbol's
  open-order limit: a GTC limit order of an account that already has ``max_open_orders`` orders
  resting on the symbol (0 = no limit) is refused before it matches, whether or not it would rest.
- Matching: best price first, oldest first within a price, at the resting order's price;
  a market order may go as far as the band's edge (no limit without a band). Per match one
  Fill and one Trade; per price level whose quantity changed, one BookLevel after the level.
- Self-trade prevention (the incoming order's mode, when it meets its own account's resting
  order): CANCEL_NEWEST cancels the incoming order's rest; CANCEL_OLDEST cancels the resting
  order; CANCEL_BOTH both; DECREMENT_AND_CANCEL takes the smaller size off both, which cancels
  the smaller (both when equal). A cut that leaves an order open shrinks its quantity. Each
  cut names the other order of the prevented match and the mode.
- The rest: GTC limit rests (BookLevel); market is cancelled (NO_LIQUIDITY); IOC expires
  (IMMEDIATE_OR_CANCEL); FOK expires untouched (FOK_NOT_FILLABLE) unless it can fill completely.
- A done order (or rejected new order) with a client order id is remembered by it until the
  command ``client_id_memory`` offsets after the one that finished it, which forgets it first.
"""

from __future__ import annotations

from dataclasses import dataclass

from matcher.core import reasons
from matcher.core.commands import (
    CLIENT_ID_MEMORY_COMMANDS,
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
    symbol_params_problem,
)
from matcher.core.events import (
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
    Rejected,
    SymbolAdded,
    Trade,
    TradingStatus,
    command_id,
    rejected_order_state,
)

STP = SelfTradePrevention


@dataclass
class _Order:
    order_id: int
    symbol: str
    account: str
    side: Side
    price: int | None
    qty: int
    leaves: int
    client_order_id: str | None
    stp: SelfTradePrevention
    post_only: bool
    ts: int
    filled: int = 0

    def state(self, status: OrderStatus | None = None, order_type: OrderType = OrderType.LIMIT) -> OrderState:
        if status is None:
            status = OrderStatus.PARTIALLY_FILLED if self.filled else OrderStatus.NEW
        leaves = self.leaves if status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) else 0
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


def _price_of(resting: _Order) -> int:
    assert resting.price is not None, "a resting order is a limit order"
    return resting.price


@dataclass
class _Symbol:
    params: SymbolParams
    halted: bool
    seq: int = 0
    last_price: int | None = None


class ReferenceEngine:
    """Same interface and answers as MatchingEngine (apply and the queries), without any speed."""

    def __init__(
        self,
        partition: int,
        symbols: list[SymbolParams],
        *,
        client_id_memory: int = CLIENT_ID_MEMORY_COMMANDS,
    ) -> None:
        self.partition = partition
        self.symbols = {p.symbol: _Symbol(p, p.halted) for p in symbols}
        self.resting: dict[str, list[_Order]] = {p.symbol: [] for p in symbols}  # oldest first
        self.by_client_id: dict[tuple[str, str], _Order | OrderState] = {}
        self.client_id_memory = client_id_memory
        self.done_at: dict[tuple[str, str], int] = {}  # done orders' keys: the offset that finished them

    # ------------------------------------------------------------------ queries

    def book_depth(self, symbol: str, depth: int | None = None, ts: int = 0) -> BookDepth | None:
        if symbol not in self.symbols:
            return None
        return BookDepth.of(
            ts,
            symbol,
            self.symbols[symbol].seq,
            tuple(self._levels(symbol, Side.BUY)[:depth]),
            tuple(self._levels(symbol, Side.SELL)[:depth]),
        )

    def open_orders(self, account: str, symbol: str | None = None) -> tuple[OrderState, ...]:
        mine = [
            o
            for s, orders in self.resting.items()
            if symbol in (None, s)
            for o in orders
            if o.account == account
        ]
        return tuple(o.state() for o in sorted(mine, key=lambda o: o.order_id))

    def order_state(self, order_id: int) -> OrderState | None:
        for orders in self.resting.values():
            for o in orders:
                if o.order_id == order_id:
                    return o.state()
        return None

    def order_by_client_id(self, account: str, client_order_id: str) -> OrderState | None:
        found = self.by_client_id.get((account, client_order_id))
        return found.state() if isinstance(found, _Order) else found

    def resting_count(self) -> int:
        return sum(len(orders) for orders in self.resting.values())

    def level_counts(self) -> tuple[int, int]:
        return (
            sum(len(self._levels(symbol, Side.BUY)) for symbol in self.resting),
            sum(len(self._levels(symbol, Side.SELL)) for symbol in self.resting),
        )

    def _levels(self, symbol: str, side: Side) -> list[tuple[int, int, int]]:
        """(price, total leaves, order count), best price first."""
        prices = sorted(
            {o.price for o in self.resting[symbol] if o.side == side and o.price is not None},
            reverse=side == Side.BUY,
        )
        return [self._level(symbol, side, p) for p in prices]

    def _level(self, symbol: str, side: Side, price: int) -> tuple[int, int, int]:
        orders = [o for o in self.resting[symbol] if o.side == side and o.price == price]
        return price, sum(o.leaves for o in orders), len(orders)

    def _best(self, symbol: str, side: Side) -> int | None:
        levels = self._levels(symbol, side)
        return levels[0][0] if levels else None

    # ------------------------------------------------------------------ commands

    def apply(self, command: Command, offset: int) -> list[Event]:
        forgotten = [key for key, at in self.done_at.items() if at <= offset - self.client_id_memory]
        for key in forgotten:
            del self.by_client_id[key], self.done_at[key]
        events = self._run(command, offset)
        for key, entry in self.by_client_id.items():
            if isinstance(entry, OrderState) and key not in self.done_at:
                self.done_at[key] = offset
        return events

    def _run(self, command: Command, offset: int) -> list[Event]:
        if isinstance(command, NewOrder):
            return self._new_order(command, command_id(self.partition, offset))
        if isinstance(command, Cancel):
            return self._cancel(command)
        if isinstance(command, Amend):
            return self._amend(command, offset)
        if isinstance(command, CancelAll):
            return self._cancel_all(command)
        if isinstance(command, (Halt, Resume)):
            return self._set_halted(command, isinstance(command, Halt))
        if isinstance(command, AddSymbol):
            return self._add_symbol(command)
        if isinstance(command, QueryOrder):
            return self._query_order(command)
        if isinstance(command, QueryOpenOrders):
            return [
                OpenOrders.of(
                    command.ts,
                    command.account,
                    command.symbol,
                    self.open_orders(command.account, command.symbol),
                )
            ]
        assert isinstance(command, QueryBook)
        if command.symbol not in self.symbols:
            return [
                Rejected.of(command.ts, command.symbol, None, None, None, "QueryBook", reasons.UNKNOWN_SYMBOL)
            ]
        if command.depth is not None and (type(command.depth) is not int or command.depth < 0):
            return [
                Rejected.of(command.ts, command.symbol, None, None, None, "QueryBook", reasons.INVALID_DEPTH)
            ]
        depth = self.book_depth(command.symbol, command.depth, command.ts)
        assert depth is not None
        return [depth]

    def _new_order_problem(self, c: NewOrder) -> str | None:
        sym = self.symbols.get(c.symbol)
        if sym is None:
            return reasons.UNKNOWN_SYMBOL
        if not isinstance(c.side, Side):
            return reasons.INVALID_SIDE
        if sym.halted:
            return reasons.SYMBOL_HALTED
        if not isinstance(c.order_type, OrderType):
            return reasons.INVALID_ORDER_TYPE
        if not isinstance(c.time_in_force, TimeInForce):
            return reasons.INVALID_TIME_IN_FORCE
        if not isinstance(c.stp, SelfTradePrevention):
            return reasons.INVALID_STP_MODE
        problem = self._qty_problem(sym, c.qty)
        if problem:
            return problem
        if c.order_type == OrderType.LIMIT:
            if type(c.price) is not int or c.price <= 0:
                return reasons.INVALID_PRICE
        elif c.price is not None:
            return reasons.INVALID_PRICE
        if c.post_only and (c.order_type != OrderType.LIMIT or c.time_in_force != TimeInForce.GTC):
            return reasons.INVALID_POST_ONLY
        if c.price is not None and self._out_of_band(sym, c.price):
            return reasons.PRICE_OUT_OF_BAND
        if c.post_only and self._would_take(c.symbol, c.side, c.price):
            return reasons.POST_ONLY_WOULD_TAKE
        if self._at_open_order_limit(sym, c):
            return reasons.TOO_MANY_OPEN_ORDERS
        return None

    def _at_open_order_limit(self, sym: _Symbol, c: NewOrder) -> bool:
        """Whether `c` could rest and its account already has the most resting orders the symbol allows."""
        limit = sym.params.max_open_orders
        could_rest = c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.GTC
        resting = sum(1 for o in self.resting[c.symbol] if o.account == c.account)
        return bool(limit) and could_rest and resting >= limit

    @staticmethod
    def _qty_problem(sym: _Symbol, qty: object) -> str | None:
        if type(qty) is not int or qty <= 0:
            return reasons.INVALID_QUANTITY
        if qty < sym.params.min_qty:
            return reasons.QTY_BELOW_MIN
        if qty > sym.params.max_qty:
            return reasons.QTY_ABOVE_MAX
        return None

    @staticmethod
    def _reference(sym: _Symbol) -> int | None:
        return sym.last_price if sym.last_price is not None else sym.params.reference_price

    def _out_of_band(self, sym: _Symbol, price: int) -> bool:
        ref = self._reference(sym)
        if not sym.params.band_bps or ref is None:
            return False
        return abs(price - ref) * 10_000 > sym.params.band_bps * ref

    def _would_take(self, symbol: str, side: Side, price: int | None) -> bool:
        best = self._best(symbol, Side.SELL if side == Side.BUY else Side.BUY)
        return best is not None and self._crosses(side, price, best)

    @staticmethod
    def _crosses(side: Side, limit: int | None, price: int) -> bool:
        return limit is None or (price <= limit if side == Side.BUY else price >= limit)

    def _new_order(self, c: NewOrder, order_id: int) -> list[Event]:
        if c.client_order_id is not None and (c.account, c.client_order_id) in self.by_client_id:
            known = self.by_client_id[c.account, c.client_order_id]
            return [known.state() if isinstance(known, _Order) else known]
        problem = self._new_order_problem(c)
        if problem is not None:
            if c.client_order_id is not None:
                self.by_client_id[c.account, c.client_order_id] = rejected_order_state(c, order_id)
            return [Rejected.of(c.ts, c.symbol, c.account, order_id, c.client_order_id, "NewOrder", problem)]
        sym = self.symbols[c.symbol]
        order = _Order(
            order_id,
            c.symbol,
            c.account,
            c.side,
            c.price,
            c.qty,
            c.qty,
            c.client_order_id,
            c.stp,
            bool(c.post_only),
            c.ts,
        )
        events: list[Event] = [
            OrderAccepted.of(
                c.ts,
                c.symbol,
                order_id,
                c.account,
                c.client_order_id,
                c.side,
                c.order_type,
                c.time_in_force,
                c.price,
                c.qty,
            )
        ]
        limit = c.price
        if c.order_type == OrderType.MARKET:
            limit = self._band_edge(sym, c.side)
        cut_short = False
        if c.time_in_force != TimeInForce.FOK or self._fok_fillable(order, limit):
            cut_short = self._take(order, limit, events)
        status = None
        if order.leaves == 0:
            status = OrderStatus.CANCELLED if cut_short else OrderStatus.FILLED
        elif c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.GTC:
            self._rest(order, events)
        elif c.order_type == OrderType.MARKET and c.time_in_force != TimeInForce.FOK:
            events.append(
                OrderCancelled.of(
                    c.ts,
                    c.symbol,
                    order_id,
                    c.account,
                    c.client_order_id,
                    order.leaves,
                    0,
                    reasons.NO_LIQUIDITY,
                    None,
                    None,
                )
            )
            status = OrderStatus.CANCELLED
        else:
            reason = (
                reasons.FOK_NOT_FILLABLE
                if c.time_in_force == TimeInForce.FOK
                else reasons.IMMEDIATE_OR_CANCEL
            )
            events.append(
                OrderExpired.of(c.ts, c.symbol, order_id, c.account, c.client_order_id, order.leaves, reason)
            )
            status = OrderStatus.EXPIRED
        if c.client_order_id is not None:
            key = (c.account, c.client_order_id)
            self.by_client_id[key] = order if status is None else order.state(status, c.order_type)
        return events

    def _band_edge(self, sym: _Symbol, side: Side) -> int | None:
        """How far a market order may go: the band's edge on its side, or no limit."""
        ref = self._reference(sym)
        if not sym.params.band_bps or ref is None:
            return None
        width = sym.params.band_bps * ref // 10_000
        return ref + width if side == Side.BUY else ref - width

    def _makers(self, symbol: str, side: Side, limit: int | None) -> list[_Order]:
        """The resting orders an order on `side` could meet, in the order it would meet them."""
        opposite = Side.SELL if side == Side.BUY else Side.BUY
        candidates = [
            o for o in self.resting[symbol] if o.side == opposite and self._crosses(side, limit, _price_of(o))
        ]
        # sorted() is stable: within a price, the list's arrival order (time priority) stays.
        return sorted(candidates, key=lambda o: _price_of(o) if side == Side.BUY else -_price_of(o))

    def _fok_fillable(self, taker: _Order, limit: int | None) -> bool:
        available = 0
        for maker in self._makers(taker.symbol, taker.side, limit):
            if taker.stp != STP.NONE and maker.account == taker.account:
                if taker.stp == STP.CANCEL_OLDEST:
                    continue
                break
            available += maker.leaves
        return available >= taker.leaves

    def _take(self, taker: _Order, limit: int | None, events: list[Event]) -> bool:
        """Match; returns whether self-trade prevention cancelled the taker's rest."""
        sym = self.symbols[taker.symbol]
        opposite = Side.SELL if taker.side == Side.BUY else Side.BUY
        cut_short = False
        while taker.leaves and not cut_short:
            makers = self._makers(taker.symbol, taker.side, limit)
            if not makers:
                break
            price = makers[0].price
            assert price is not None
            before = self._level(taker.symbol, opposite, price)
            for maker in [m for m in makers if m.price == price]:
                if taker.stp != STP.NONE and maker.account == taker.account:
                    cut_short = self._prevent_self_trade(taker, maker, events)
                else:
                    qty = min(maker.leaves, taker.leaves)
                    maker.leaves -= qty
                    maker.filled += qty
                    taker.leaves -= qty
                    taker.filled += qty
                    sym.last_price = price
                    if maker.leaves == 0:
                        self._remove(maker, OrderStatus.FILLED)
                    events.append(
                        Fill.of(
                            taker.ts,
                            taker.symbol,
                            price,
                            qty,
                            taker.side,
                            taker.order_id,
                            taker.account,
                            taker.client_order_id,
                            taker.leaves,
                            maker.order_id,
                            maker.account,
                            maker.client_order_id,
                            maker.leaves,
                        )
                    )
                    sym.seq += 1
                    events.append(
                        Trade.of(
                            taker.symbol,
                            sym.seq,
                            taker.ts,
                            price,
                            qty,
                            taker.side,
                            maker.order_id,
                            taker.order_id,
                        )
                    )
                if taker.leaves == 0:
                    break
            after = self._level(taker.symbol, opposite, price)
            if after != before:
                sym.seq += 1
                events.append(BookLevel.of(taker.symbol, sym.seq, taker.ts, opposite, *after))
        return cut_short

    def _prevent_self_trade(self, taker: _Order, maker: _Order, events: list[Event]) -> bool:
        """Apply the taker's mode when it meets its own resting order; True if the taker's rest is gone."""
        mode = taker.stp
        maker_cut = maker.leaves if mode in (STP.CANCEL_OLDEST, STP.CANCEL_BOTH) else 0
        taker_cut = taker.leaves if mode in (STP.CANCEL_NEWEST, STP.CANCEL_BOTH) else 0
        if mode == STP.DECREMENT_AND_CANCEL:
            maker_cut = taker_cut = min(maker.leaves, taker.leaves)
        for order, cut, counterparty in ((maker, maker_cut, taker), (taker, taker_cut, maker)):
            if not cut:
                continue
            order.leaves -= cut
            if order.leaves:
                order.qty -= cut
            elif order is maker:
                self._remove(maker, OrderStatus.CANCELLED)
            events.append(
                OrderCancelled.of(
                    taker.ts,
                    order.symbol,
                    order.order_id,
                    order.account,
                    order.client_order_id,
                    cut,
                    order.leaves,
                    reasons.SELF_TRADE_PREVENTION,
                    counterparty.order_id,
                    mode,
                )
            )
        return taker_cut > 0 and taker.leaves == 0

    def _remove(self, order: _Order, status: OrderStatus) -> None:
        self.resting[order.symbol].remove(order)
        if order.client_order_id is not None:
            self.by_client_id[order.account, order.client_order_id] = order.state(status)

    def _rest(self, order: _Order, events: list[Event]) -> None:
        self.resting[order.symbol].append(order)
        sym = self.symbols[order.symbol]
        sym.seq += 1
        assert order.price is not None
        events.append(
            BookLevel.of(
                order.symbol,
                sym.seq,
                order.ts,
                order.side,
                *self._level(order.symbol, order.side, order.price),
            )
        )

    def _cancel_resting(self, order: _Order, ts: int, reason: str, events: list[Event]) -> None:
        """Cancel all that is left of a resting order and take it off the book."""
        symbol, order_id, account, cid = order.symbol, order.order_id, order.account, order.client_order_id
        events.append(
            OrderCancelled.of(ts, symbol, order_id, account, cid, order.leaves, 0, reason, None, None)
        )
        self._unlink(order, OrderStatus.CANCELLED, ts, events)

    def _unlink(self, order: _Order, status: OrderStatus | None, ts: int, events: list[Event]) -> None:
        """Take a resting order off the book, emit its level; `status`: how it ended (None: it comes back)."""
        self.resting[order.symbol].remove(order)
        if order.client_order_id is not None and status is not None:
            self.by_client_id[order.account, order.client_order_id] = order.state(status)
        sym = self.symbols[order.symbol]
        sym.seq += 1
        assert order.price is not None
        events.append(
            BookLevel.of(
                order.symbol, sym.seq, ts, order.side, *self._level(order.symbol, order.side, order.price)
            )
        )

    def _find(self, c: Cancel | Amend | QueryOrder) -> _Order | OrderState | str:
        if c.order_id is not None:
            found: _Order | OrderState | None = next(
                (o for orders in self.resting.values() for o in orders if o.order_id == c.order_id), None
            )
        elif c.client_order_id is not None and c.account is not None:
            found = self.by_client_id.get((c.account, c.client_order_id))
        else:
            return reasons.MISSING_ORDER_REFERENCE
        if found is None or found.symbol != c.symbol:
            return reasons.UNKNOWN_ORDER if c.symbol in self.symbols else reasons.UNKNOWN_SYMBOL
        if c.account is not None and found.account != c.account:
            return reasons.NOT_ORDER_OWNER
        return found

    def _cancel(self, c: Cancel) -> list[Event]:
        found = self._find(c)
        if isinstance(found, OrderState):
            found = reasons.ORDER_NOT_OPEN
        if isinstance(found, str):
            return [Rejected.of(c.ts, c.symbol, c.account, c.order_id, c.client_order_id, "Cancel", found)]
        events: list[Event] = []
        self._cancel_resting(found, c.ts, reasons.USER_REQUESTED, events)
        return events

    def _amend(self, c: Amend, offset: int) -> list[Event]:
        def reject(reason: str) -> list[Event]:
            return [Rejected.of(c.ts, c.symbol, c.account, c.order_id, c.client_order_id, "Amend", reason)]

        order = self._find(c)
        if isinstance(order, OrderState):
            return reject(reasons.ORDER_NOT_OPEN)
        if isinstance(order, str):
            return reject(order)
        sym = self.symbols[c.symbol]
        if sym.halted:
            return reject(reasons.SYMBOL_HALTED)
        if c.qty is None and c.price is None:
            return reject(reasons.NOTHING_TO_AMEND)
        qty = order.qty if c.qty is None else c.qty
        price = order.price if c.price is None else c.price
        if type(qty) is not int or qty <= 0:
            return reject(reasons.INVALID_QUANTITY)
        if qty <= order.filled:
            events: list[Event] = []
            self._cancel_resting(order, c.ts, reasons.AMENDED_BELOW_FILLED, events)
            return events
        problem = self._qty_problem(sym, qty)
        if problem is None and price != order.price:
            if type(price) is not int or price <= 0:
                problem = reasons.INVALID_PRICE
            elif self._out_of_band(sym, price):
                problem = reasons.PRICE_OUT_OF_BAND
        if problem is not None:
            return reject(problem)
        assert price is not None
        if price == order.price and qty <= order.qty:
            cut = order.qty - qty
            order.qty = qty
            order.leaves -= cut
            events = [
                OrderAmended.of(
                    c.ts,
                    c.symbol,
                    order.order_id,
                    order.account,
                    order.client_order_id,
                    price,
                    qty,
                    order.leaves,
                    True,
                )
            ]
            if cut:
                sym.seq += 1
                events.append(
                    BookLevel.of(
                        c.symbol, sym.seq, c.ts, order.side, *self._level(c.symbol, order.side, price)
                    )
                )
            return events
        if order.post_only and self._would_take(c.symbol, order.side, price):
            return reject(reasons.POST_ONLY_WOULD_TAKE)
        events = [
            OrderAmended.of(
                c.ts,
                c.symbol,
                order.order_id,
                order.account,
                order.client_order_id,
                price,
                qty,
                qty - order.filled,
                False,
            )
        ]
        self._unlink(order, None, c.ts, events)
        order.qty, order.leaves, order.price = qty, qty - order.filled, price
        cut_short = self._take(order, price, events)
        if order.leaves:
            self._rest(order, events)
        elif order.client_order_id is not None:
            status = OrderStatus.CANCELLED if cut_short else OrderStatus.FILLED
            self.by_client_id[order.account, order.client_order_id] = order.state(status)
        return events

    def _cancel_all(self, c: CancelAll) -> list[Event]:
        if c.symbol not in self.symbols:
            return [Rejected.of(c.ts, c.symbol, c.account, None, None, "CancelAll", reasons.UNKNOWN_SYMBOL)]
        events: list[Event] = []
        for order in sorted(
            (o for o in self.resting[c.symbol] if o.account == c.account), key=lambda o: o.order_id
        ):
            self._cancel_resting(order, c.ts, reasons.CANCEL_ALL, events)
        return events

    def _set_halted(self, c: Halt | Resume, halted: bool) -> list[Event]:
        request = type(c).__name__
        sym = self.symbols.get(c.symbol)
        if sym is None:
            return [Rejected.of(c.ts, c.symbol, None, None, None, request, reasons.UNKNOWN_SYMBOL)]
        if sym.halted == halted:
            reason = reasons.SYMBOL_ALREADY_HALTED if halted else reasons.SYMBOL_NOT_HALTED
            return [Rejected.of(c.ts, c.symbol, None, None, None, request, reason)]
        sym.halted = halted
        sym.seq += 1
        return [TradingStatus.of(c.symbol, sym.seq, c.ts, halted)]

    def _add_symbol(self, c: AddSymbol) -> list[Event]:
        p = c.params
        if not isinstance(p, SymbolParams) or symbol_params_problem(p) is not None:
            symbol = p.symbol if isinstance(p, SymbolParams) else None
            return [Rejected.of(c.ts, symbol, None, None, None, "AddSymbol", reasons.INVALID_SYMBOL_PARAMS)]
        if p.symbol in self.symbols:
            return [Rejected.of(c.ts, p.symbol, None, None, None, "AddSymbol", reasons.SYMBOL_EXISTS)]
        self.symbols[p.symbol] = _Symbol(p, p.halted)
        self.resting[p.symbol] = []
        return [SymbolAdded.of(c.ts, p)]

    def _query_order(self, c: QueryOrder) -> list[Event]:
        found = self._find(c)
        if isinstance(found, str):
            return [
                Rejected.of(c.ts, c.symbol, c.account, c.order_id, c.client_order_id, "QueryOrder", found)
            ]
        return [found.state() if isinstance(found, _Order) else found]
