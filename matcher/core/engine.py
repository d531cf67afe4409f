"""The matching engine of one partition: `MatchingEngine.apply(command, offset) -> events`.

Price-time priority, trades at the resting order's price. Deterministic: the output depends
only on the commands and their offsets, never on a clock, randomness, hash seeds or dict order.

The hot paths (new order, cancel, matching) are written for CPython's speed: locals alias
attributes, events are records built from one tuple (``Fill((...))``, see ``events.Record``),
and rare features (self-trade prevention, fill-or-kill, client order ids, price bands) cost
one test each when unused.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum
from heapq import heappop
from typing import Any, Final

from matcher.core import reasons, snapshot
from matcher.core.book import Book, Order, OrderBook, by_order_id
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
    OFFSET_BITS,
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
    rejected_order_state,
)

_alloc: Final[Any] = object.__new__

BUY: Final = Side.BUY
SELL: Final = Side.SELL
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
GTC: Final = TimeInForce.GTC
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
STP_NONE: Final = SelfTradePrevention.NONE
CANCEL_NEWEST: Final = SelfTradePrevention.CANCEL_NEWEST
CANCEL_OLDEST: Final = SelfTradePrevention.CANCEL_OLDEST
CANCEL_BOTH: Final = SelfTradePrevention.CANCEL_BOTH
DECREMENT_AND_CANCEL: Final = SelfTradePrevention.DECREMENT_AND_CANCEL
FILLED: Final = OrderStatus.FILLED
CANCELLED: Final = OrderStatus.CANCELLED
EXPIRED: Final = OrderStatus.EXPIRED

_STP_MEMBERS: Final = frozenset(map(id, SelfTradePrevention))

# Larger than any key: the limit of a market order when the symbol has no price band.
_NO_LIMIT: Final = 2**127


class InvariantViolation(Exception):
    """The engine's state broke one of its invariants: a bug, never a user's mistake."""


class MatchingEngine:
    """Every symbol of one partition of the `orders` topic.

    `apply(command, offset)` runs one command and returns its events (see ``events.py``).
    Queries read the state without changing it; `snapshot()`/`restore()` save and load it whole.
    """

    def __init__(
        self,
        partition: int,
        symbols: Iterable[SymbolParams] = (),
        *,
        client_id_memory: int = CLIENT_ID_MEMORY_COMMANDS,  # other values are for tests only
    ) -> None:
        if type(partition) is not int or not 0 <= partition < 2 ** (63 - OFFSET_BITS):
            raise ValueError(f"partition must be an integer in [0, {2 ** (63 - OFFSET_BITS)})")
        if type(client_id_memory) is not int or client_id_memory < 1:
            raise ValueError("client_id_memory must be a positive number of commands")
        self.partition = partition
        self._id_base = partition << OFFSET_BITS
        self._books: dict[str, OrderBook] = {}
        self._orders: dict[int, Order] = {}  # every resting order by id
        # (account, client order id) -> the order while it rests, its final state once done.
        self._by_client_id: dict[tuple[str, str], Order | OrderState] = {}
        # The done ones among them, by the offset of the command that finished them (oldest first).
        self._done: deque[tuple[int, tuple[str, str]]] = deque()
        self._client_id_memory = client_id_memory
        self._offset = 0  # of the command being applied
        for params in symbols:
            problem = symbol_params_problem(params)
            if problem is not None:
                raise ValueError(f"symbol {params.symbol!r}: {problem}")
            if params.symbol in self._books:
                raise ValueError(f"symbol {params.symbol!r} is listed twice")
            self._books[params.symbol] = OrderBook(params)
        self._handlers: dict[type, Callable[[Any, int], list[Event]]] = {
            NewOrder: self._new_order,
            Cancel: self._cancel,
            Amend: self._amend,
            CancelAll: self._cancel_all,
            Halt: self._halt,
            Resume: self._resume,
            AddSymbol: self._add_symbol,
            QueryOrder: self._query_order,
            QueryOpenOrders: self._query_open_orders,
            QueryBook: self._query_book,
        }

    # ------------------------------------------------------------------ the command loop

    def apply(self, command: Command, offset: int) -> list[Event]:
        """Run `command`, read at `offset` of the `orders` partition; return its events in order."""
        done = self._done
        if done and done[0][0] <= offset - self._client_id_memory:
            self._forget_done(offset - self._client_id_memory)
        self._offset = offset
        return self._handlers[type(command)](command, offset)

    def _forget_done(self, up_to: int) -> None:
        """Forget the done orders finished at offset ``up_to`` or before (see CLIENT_ID_MEMORY_COMMANDS)."""
        done, by_client_id = self._done, self._by_client_id
        while done and done[0][0] <= up_to:
            del by_client_id[done.popleft()[1]]

    def _keep_done(self, key: tuple[str, str], state: OrderState) -> None:
        """Keep the final state of a done order by its client order id, finished by this command."""
        self._by_client_id[key] = state
        self._done.append((self._offset, key))

    # ------------------------------------------------------------------ new orders

    def _new_order(self, command: NewOrder, offset: int) -> list[Event]:
        ts, symbol, account, side, order_type, qty, price, tif, post_only, stp, cid = command
        order_id = self._id_base | offset
        if cid is not None:
            known = self._by_client_id.get((account, cid))
            if known is not None:
                return [known if isinstance(known, OrderState) else known.state()]
        book = self._books.get(symbol)
        if book is None:
            return self._reject_new(command, order_id, reasons.UNKNOWN_SYMBOL)
        # The fast checks: every field valid (enum fields must be members of their enums).
        # Any failure goes to _new_order_problem, which names the first problem found.
        if side is BUY:
            own, opp = book.bids, book.asks
        elif side is SELL:
            own, opp = book.asks, book.bids
        else:
            return self._reject_new(command, order_id, reasons.INVALID_SIDE)
        # The matching limit as a key of the opposite side (0: no valid price for the order type).
        if order_type is LIMIT:
            limit_key = price * opp.sign if type(price) is int and price > 0 else 0
        else:
            limit_key = _NO_LIMIT if order_type is MARKET and price is None else 0
        if (
            not limit_key
            or book.halted
            or type(qty) is not int
            or not book.min_qty <= qty <= book.max_qty
            or (tif is not GTC and tif is not IOC and tif is not FOK)
            or (stp is not STP_NONE and id(stp) not in _STP_MEMBERS)
            or (post_only and (order_type is not LIMIT or tif is not GTC))
        ):
            return self._reject_new(command, order_id, self._new_order_problem(book, command))
        if book.band_bps:
            band = book.band()
            if band is not None:
                if order_type is MARKET:
                    # A market order may walk the book to the edge of the band, no further.
                    limit_key = (band[1] if side is BUY else band[0]) * opp.sign
                elif not band[0] <= price <= band[1]:  # type: ignore[operator]
                    return self._reject_new(command, order_id, reasons.PRICE_OUT_OF_BAND)
        if post_only and self._crosses(opp, limit_key):
            return self._reject_new(command, order_id, reasons.POST_ONLY_WOULD_TAKE)
        # Checked before matching, like an exchange's MAX_NUM_ORDERS filter: only an order that could
        # rest counts (a GTC limit), and whether it would rest after matching does not matter, so the
        # rule needs nothing but the account's count.
        max_open = book.max_open_orders
        if max_open and tif is GTC and order_type is LIMIT and book.open_count(account) >= max_open:
            return self._reject_new(command, order_id, reasons.TOO_MANY_OPEN_ORDERS)
        # What Order(...) does, without the Python frame of __init__: ~6% of the whole replay.
        order = _alloc(Order)
        order.order_id = order_id
        order.symbol = symbol
        order.account = account
        order.side = side
        order.price = price
        order.qty = qty
        order.filled = 0
        order.leaves = qty
        order.client_order_id = cid
        order.stp = stp
        order.post_only = post_only
        order.ts = ts
        order.priority = offset
        order.level = None
        events: list[Event] = [
            OrderAccepted((ts, symbol, order_id, account, cid, side, order_type, tif, price, qty))
        ]
        heap = opp.heap
        # heap[0] is the smallest key, live or stale: above the limit, nothing can cross.
        if heap and heap[0] <= limit_key and (tif is not FOK or self._fok_fillable(opp, order, limit_key)):
            cut_short = self._take(book, opp, order, limit_key, events)
            leaves = order.leaves
        else:
            cut_short, leaves = False, qty
        if not leaves:
            if cid is not None:
                self._retire(order, CANCELLED if cut_short else FILLED, order_type)
        elif tif is GTC and order_type is LIMIT:
            # What self._rest(book, own, order, events) does, inline: most orders rest, and the call
            # with the attribute loads it repeats costs ~2% of a replay.
            level = own.levels.get(-limit_key)
            if level is None:
                level = own.level_at(price)  # type: ignore[arg-type]
            level.append(order)
            level.total = total = level.total + leaves
            order.level = level
            self._orders[order_id] = order
            # What book.index(order) does, inline (as the rest of this block: keep the two alike).
            owned = book.by_account.get(account)
            if owned is None:
                owned = book.by_account[account] = {}
            owned[order_id] = order
            book.seq = seq = book.seq + 1
            events.append(BookLevel((symbol, seq, ts, side, price, total, len(level))))
            if cid is not None:
                self._by_client_id[account, cid] = order
        elif order_type is MARKET and tif is not FOK:
            events.append(
                OrderCancelled(
                    (ts, symbol, order_id, account, cid, leaves, 0, reasons.NO_LIQUIDITY, None, None)
                )
            )
            if cid is not None:
                self._retire(order, CANCELLED, order_type)
        else:
            reason = reasons.FOK_NOT_FILLABLE if tif is FOK else reasons.IMMEDIATE_OR_CANCEL
            events.append(OrderExpired((ts, symbol, order_id, account, cid, leaves, reason)))
            if cid is not None:
                self._retire(order, EXPIRED, order_type)
        return events

    def _new_order_problem(self, book: OrderBook, command: NewOrder) -> str:
        """Why a new order that failed the fast checks is rejected, checked in the documented order."""
        if book.halted:
            return reasons.SYMBOL_HALTED
        if not _is_member(command.order_type, OrderType):
            return reasons.INVALID_ORDER_TYPE
        if not _is_member(command.time_in_force, TimeInForce):
            return reasons.INVALID_TIME_IN_FORCE
        if not _is_member(command.stp, SelfTradePrevention):
            return reasons.INVALID_STP_MODE
        qty_problem = _qty_problem(book, command.qty)
        if qty_problem is not None:
            return qty_problem
        if command.order_type == LIMIT:
            if type(command.price) is not int or command.price <= 0:
                return reasons.INVALID_PRICE
        elif command.price is not None:
            return reasons.INVALID_PRICE
        return reasons.INVALID_POST_ONLY

    def _reject_new(self, command: NewOrder, order_id: int, reason: str) -> list[Event]:
        cid = command.client_order_id
        if cid is not None:
            # A retry of a rejected order must get the same answer, so the rejection is remembered,
            # with only the fields that were valid (anything else could not be snapshotted).
            self._keep_done((command.account, cid), rejected_order_state(command, order_id))
        return [
            Rejected(
                (command.ts, command.symbol, command.account, order_id, cid, "NewOrder", reason),
            )
        ]

    @staticmethod
    def _crosses(opp: Book, limit_key: int) -> bool:
        best = opp.best()
        return best is not None and best.price * opp.sign <= limit_key

    def _fok_fillable(self, opp: Book, taker: Order, limit_key: int) -> bool:
        """Whether `taker` would fill completely, walking the book as `_take` would, without changing it."""
        need = taker.leaves
        stp = taker.stp
        for level in opp.walk_best_first():  # reads only the levels it reaches, no sort of them all
            if level.price * opp.sign > limit_key:
                break
            for maker in level:
                if stp and maker.account == taker.account:
                    if stp is CANCEL_OLDEST:
                        continue  # the maker would be cancelled and matching goes on
                    return False  # the taker would be cut short before it is complete
                need -= maker.leaves
                if need <= 0:
                    return True
        return False

    def _take(self, book: OrderBook, opp: Book, taker: Order, limit_key: int, events: list[Event]) -> bool:
        """Match `taker` against `opp` while prices cross (key <= limit_key), best price and oldest first.

        Emits per maker a Fill and a Trade, per level changed one BookLevel; updates the
        taker's leaves and filled. The caller decides what happens to the rest. Returns
        whether self-trade prevention cancelled the taker's rest.
        """
        heap, levels, orders, by_account = opp.heap, opp.levels, self._orders, book.by_account
        append = events.append
        ts, symbol, aggressor, maker_side = taker.ts, book.symbol, taker.side, opp.side
        taker_id, account, taker_cid, stp = taker.order_id, taker.account, taker.client_order_id, taker.stp
        remaining = start_leaves = taker.leaves
        cut = 0  # of the taker's leaves by self-trade prevention: what is not cut or left was filled
        seq = book.seq
        last_price = None
        cut_short = False
        while remaining:
            while heap:
                key = heap[0]
                level = levels.get(key)
                if level is not None:
                    break
                heappop(heap)
            else:
                break
            if key > limit_key:
                break
            price = level.price
            total = start_total = level.total
            done = 0  # makers at the front of the level that are filled or cancelled
            count = len(level)
            while True:  # level[done] is a maker and the taker has leaves
                maker = level[done]
                if stp and maker.account == account:
                    before, taker_before = maker.leaves, remaining
                    remaining = self._prevent_self_trade(book, maker, taker, remaining, events)
                    cut += taker_before - remaining
                    cut_short = not remaining
                    if maker.level is None:
                        total -= before
                        done += 1
                    else:
                        total -= before - maker.leaves
                    if not remaining or done == count:
                        break
                    continue
                maker_id = maker.order_id
                leaves = maker.leaves
                if leaves > remaining:
                    traded = remaining
                    maker.leaves = leaves = leaves - remaining
                    maker.filled += remaining
                    remaining = 0
                else:
                    traded = leaves
                    remaining -= leaves
                    maker.leaves = leaves = 0
                    maker.filled += traded
                    maker.level = None
                    del orders[maker_id]
                    # What book.unindex(maker) does, inline: a filled maker is the commonest way out.
                    owned = by_account[maker.account]
                    del owned[maker_id]
                    if not owned:
                        del by_account[maker.account]
                    done += 1
                    if maker.client_order_id is not None:
                        self._retire(maker, FILLED)
                total -= traded
                last_price = price
                seq += 1
                append(
                    Fill(
                        (
                            ts,
                            symbol,
                            price,
                            traded,
                            aggressor,
                            taker_id,
                            account,
                            taker_cid,
                            remaining,
                            maker_id,
                            maker.account,
                            maker.client_order_id,
                            leaves,
                        ),
                    )
                )
                append(Trade((symbol, seq, ts, price, traded, aggressor, maker_id, taker_id)))
                if not remaining or done == count:
                    break
            if done:
                del level[:done]
            if total != start_total:
                level.total = total
                seq += 1
                append(BookLevel((symbol, seq, ts, maker_side, price, total, len(level))))
            if not level:
                del levels[key]
        taker.leaves = remaining
        taker.filled += start_leaves - remaining - cut
        book.seq = seq
        if last_price is not None:
            book.last_price = last_price
        return cut_short

    def _prevent_self_trade(
        self, book: OrderBook, maker: Order, taker: Order, remaining: int, events: list[Event]
    ) -> int:
        """`taker`, with `remaining` open, meets `maker` of its own account: apply the taker's mode.

        Returns the taker's new remaining. A cancelled maker leaves the id index and gets
        ``level = None``; the caller takes it off its level. Events: the maker's, then the taker's.
        """
        mode = taker.stp
        maker_cut = taker_cut = 0
        if mode is CANCEL_OLDEST or mode is CANCEL_BOTH:
            maker_cut = maker.leaves
        if mode is CANCEL_NEWEST or mode is CANCEL_BOTH:
            taker_cut = remaining
        if mode is DECREMENT_AND_CANCEL:
            # The smaller is cancelled, the larger shrinks by as much; both go when equal.
            maker_cut = taker_cut = min(maker.leaves, remaining)
        if maker_cut:
            self._cut(book, maker, taker, maker_cut, events)
        if taker_cut:
            remaining -= taker_cut
            if remaining:  # a decrement shrinks the order; a cut to nothing cancels it, qty unchanged
                taker.qty -= taker_cut
            events.append(
                OrderCancelled(
                    (
                        taker.ts,
                        book.symbol,
                        taker.order_id,
                        taker.account,
                        taker.client_order_id,
                        taker_cut,
                        remaining,
                        reasons.SELF_TRADE_PREVENTION,
                        maker.order_id,
                        mode,
                    ),
                )
            )
        return remaining

    def _cut(self, book: OrderBook, maker: Order, taker: Order, qty: int, events: list[Event]) -> None:
        """Self-trade prevention (`taker`'s mode) takes `qty` off a resting order: all of it cancels it."""
        leaves = maker.leaves - qty
        if leaves:
            maker.leaves = leaves
            maker.qty -= qty
        else:
            maker.level = None
            del self._orders[maker.order_id]
            book.unindex(maker)
            if maker.client_order_id is not None:
                self._retire(maker, CANCELLED)
        events.append(
            OrderCancelled(
                (
                    taker.ts,
                    book.symbol,
                    maker.order_id,
                    maker.account,
                    maker.client_order_id,
                    qty,
                    leaves,
                    reasons.SELF_TRADE_PREVENTION,
                    taker.order_id,
                    taker.stp,
                ),
            )
        )

    def _rest(self, book: OrderBook, own: Book, order: Order, events: list[Event]) -> None:
        """Put `order` at the back of its price level and index it; emit the level's new state.

        _new_order does the same inline (keep the two alike).
        """
        price: int = order.price  # type: ignore[assignment]  # an order that rests is a limit order
        level = own.levels.get(price * own.sign)
        if level is None:
            level = own.level_at(price)
        level.append(order)
        level.total = total = level.total + order.leaves
        order.level = level
        self._orders[order.order_id] = order
        book.index(order)
        book.seq = seq = book.seq + 1
        events.append(BookLevel((book.symbol, seq, order.ts, order.side, price, total, len(level))))

    def _unlink(self, book: OrderBook, order: Order, ts: int, events: list[Event]) -> None:
        """Take a resting order off its level and out of the id index; emit the level's new state."""
        level = order.level
        assert level is not None, "only a resting order can be unlinked"
        level.remove(order)
        level.total = total = level.total - order.leaves
        order.level = None
        del self._orders[order.order_id]
        book.unindex(order)
        book.seq = seq = book.seq + 1
        events.append(BookLevel((book.symbol, seq, ts, order.side, level.price, total, len(level))))
        if not level:
            (book.bids if order.side is BUY else book.asks).remove_level(level)

    def _retire(self, order: Order, status: OrderStatus, order_type: OrderType = LIMIT) -> None:
        """Keep the final state of a done order that has a client order id, for idempotent retries."""
        cid = order.client_order_id
        assert cid is not None, "only orders with a client order id are kept once done"
        self._keep_done((order.account, cid), order.state(status, order_type))

    # ------------------------------------------------------------------ cancel, amend, cancel all

    def _cancel(self, command: Cancel, offset: int) -> list[Event]:
        ts, symbol, account, order_id, cid = command
        order = self._orders.get(order_id)  # type: ignore[arg-type]  # None finds nothing
        if order is None or cid is not None or order.symbol != symbol or order.account != account:
            if order is None and cid is None and order_id is not None and symbol in self._books:
                # The common miss (the order is done), answered without the general search.
                return [Rejected((ts, symbol, account, order_id, cid, "Cancel", reasons.UNKNOWN_ORDER))]
            found = self._find(command)
            if not isinstance(found, Order):
                reason = reasons.ORDER_NOT_OPEN if isinstance(found, OrderState) else found
                return [Rejected((ts, symbol, account, order_id, cid, "Cancel", reason))]
            order = found
        events: list[Event] = [
            OrderCancelled(
                (
                    ts,
                    symbol,
                    order.order_id,
                    account,
                    order.client_order_id,
                    order.leaves,
                    0,
                    reasons.USER_REQUESTED,
                    None,
                    None,
                ),
            )
        ]
        self._unlink(self._books[symbol], order, ts, events)
        if order.client_order_id is not None:
            self._retire(order, CANCELLED)
        return events

    def _find(self, command: Cancel | Amend | QueryOrder) -> Order | OrderState | str:
        """The order a cancel, amend or query names (open, or done if named by client id), or why none."""
        symbol, account, order_id, cid = (
            command.symbol,
            command.account,
            command.order_id,
            command.client_order_id,
        )
        if order_id is not None:
            found: Order | OrderState | None = self._orders.get(order_id)
        elif cid is not None and account is not None:
            found = self._by_client_id.get((account, cid))
        else:
            return reasons.MISSING_ORDER_REFERENCE
        if found is None or found.symbol != symbol:
            return reasons.UNKNOWN_SYMBOL if symbol not in self._books else reasons.UNKNOWN_ORDER
        if account is not None and found.account != account:
            return reasons.NOT_ORDER_OWNER
        return found

    def _amend(self, command: Amend, offset: int) -> list[Event]:
        ts, symbol, account, _, _, new_qty, new_price = command
        order = self._find(command)
        if not isinstance(order, Order):
            return self._reject(command, reasons.ORDER_NOT_OPEN if isinstance(order, OrderState) else order)
        book = self._books[symbol]
        if book.halted:
            return self._reject(command, reasons.SYMBOL_HALTED)
        if new_qty is None and new_price is None:
            return self._reject(command, reasons.NOTHING_TO_AMEND)
        qty = order.qty if new_qty is None else new_qty
        price = order.price if new_price is None else new_price
        assert price is not None, "a resting order is a limit order"
        if type(qty) is not int or qty <= 0:
            return self._reject(command, reasons.INVALID_QUANTITY)
        order_id, leaves = order.order_id, order.leaves
        events: list[Event]
        if qty <= order.filled:
            events = [
                OrderCancelled(
                    (
                        ts,
                        symbol,
                        order_id,
                        account,
                        order.client_order_id,
                        leaves,
                        0,
                        reasons.AMENDED_BELOW_FILLED,
                        None,
                        None,
                    ),
                )
            ]
            self._unlink(book, order, ts, events)
            if order.client_order_id is not None:
                self._retire(order, CANCELLED)
            return events
        problem = _qty_problem(book, qty)
        if problem is None and price != order.price:
            problem = _price_problem(book, price)
        if problem is not None:
            return self._reject(command, problem)
        side = order.side
        own, opp = (book.bids, book.asks) if side is BUY else (book.asks, book.bids)
        if price == order.price and qty <= order.qty:
            # Quantity down (or no change) at the same price keeps the order's place in the queue.
            cut = order.qty - qty
            order.qty = qty
            order.leaves = leaves = leaves - cut
            events = [
                OrderAmended(
                    (ts, symbol, order_id, account, order.client_order_id, price, qty, leaves, True),
                )
            ]
            level = order.level
            if cut and level is not None:
                level.total -= cut
                book.seq += 1
                events.append(BookLevel((symbol, book.seq, ts, side, price, level.total, len(level))))
            return events
        limit_key = price * opp.sign
        if order.post_only and self._crosses(opp, limit_key):
            return self._reject(command, reasons.POST_ONLY_WOULD_TAKE)
        # A new price or more quantity: the order goes to the back of its (new) level.
        leaves = qty - order.filled
        events = [
            OrderAmended(
                (ts, symbol, order_id, account, order.client_order_id, price, qty, leaves, False),
            )
        ]
        self._unlink(book, order, ts, events)
        order.qty, order.leaves, order.price, order.priority = qty, leaves, price, offset
        cut_short = self._crosses(opp, limit_key) and self._take(book, opp, order, limit_key, events)
        if order.leaves:
            self._rest(book, own, order, events)
        elif order.client_order_id is not None:
            self._retire(order, CANCELLED if cut_short else FILLED)
        return events

    def _cancel_all(self, command: CancelAll, offset: int) -> list[Event]:
        ts, symbol, account = command
        book = self._books.get(symbol)
        if book is None:
            return self._reject(command, reasons.UNKNOWN_SYMBOL)
        events: list[Event] = []
        for order in book.owned(account):
            events.append(
                OrderCancelled(
                    (
                        ts,
                        symbol,
                        order.order_id,
                        account,
                        order.client_order_id,
                        order.leaves,
                        0,
                        reasons.CANCEL_ALL,
                        None,
                        None,
                    ),
                )
            )
            self._unlink(book, order, ts, events)
            if order.client_order_id is not None:
                self._retire(order, CANCELLED)
        return events

    def _reject(
        self, command: Cancel | Amend | CancelAll | Halt | Resume | QueryOrder, reason: str
    ) -> list[Event]:
        return [
            Rejected.of(
                command.ts,
                command.symbol,
                getattr(command, "account", None),
                getattr(command, "order_id", None),
                getattr(command, "client_order_id", None),
                type(command).__name__,
                reason,
            )
        ]

    # ------------------------------------------------------------------ admin

    def _halt(self, command: Halt, offset: int) -> list[Event]:
        return self._set_halted(command, True)

    def _resume(self, command: Resume, offset: int) -> list[Event]:
        return self._set_halted(command, False)

    def _set_halted(self, command: Halt | Resume, halted: bool) -> list[Event]:
        book = self._books.get(command.symbol)
        if book is None:
            return self._reject(command, reasons.UNKNOWN_SYMBOL)
        if book.halted == halted:
            return self._reject(
                command, reasons.SYMBOL_ALREADY_HALTED if halted else reasons.SYMBOL_NOT_HALTED
            )
        book.halted = halted
        book.seq += 1
        return [TradingStatus.of(book.symbol, book.seq, command.ts, halted)]

    def _add_symbol(self, command: AddSymbol, offset: int) -> list[Event]:
        params = command.params
        symbol = params.symbol if isinstance(params, SymbolParams) else None
        if symbol is None or symbol_params_problem(params) is not None:
            reason = reasons.INVALID_SYMBOL_PARAMS
        elif symbol in self._books:
            reason = reasons.SYMBOL_EXISTS
        else:
            self._books[symbol] = OrderBook(params)
            return [SymbolAdded.of(command.ts, params)]
        return [Rejected.of(command.ts, symbol, None, None, None, "AddSymbol", reason)]

    # ------------------------------------------------------------------ queries

    def _query_order(self, command: QueryOrder, offset: int) -> list[Event]:
        found = self._find(command)
        if isinstance(found, str):
            return self._reject(command, found)
        return [found if isinstance(found, OrderState) else found.state()]

    def _query_open_orders(self, command: QueryOpenOrders, offset: int) -> list[Event]:
        return [
            OpenOrders.of(
                command.ts, command.account, command.symbol, self.open_orders(command.account, command.symbol)
            )
        ]

    def _query_book(self, command: QueryBook, offset: int) -> list[Event]:
        depth = command.depth
        reason = None
        if command.symbol not in self._books:
            reason = reasons.UNKNOWN_SYMBOL
        elif depth is not None and (type(depth) is not int or depth < 0):
            reason = reasons.INVALID_DEPTH
        if reason is not None:
            return [Rejected.of(command.ts, command.symbol, None, None, None, "QueryBook", reason)]
        book = self._books[command.symbol]
        return [
            BookDepth.of(command.ts, book.symbol, book.seq, book.bids.depth(depth), book.asks.depth(depth))
        ]

    def open_orders(self, account: str, symbol: str | None = None) -> tuple[OrderState, ...]:
        """The account's open orders (on `symbol`, or on every symbol), oldest order id first.

        Each book's index by account gives them: a query costs the account's orders, not the book's.
        """
        if symbol is None:
            books: Iterable[OrderBook] = self._books.values()
        else:
            books = [self._books[symbol]] if symbol in self._books else []
        owned = [order for book in books for order in book.owned(account)]
        owned.sort(key=by_order_id)  # the books' runs merged (one run: a linear check)
        return tuple(order.state() for order in owned)

    def order_state(self, order_id: int) -> OrderState | None:
        """An open order's state, or None when no order with this id is open."""
        order = self._orders.get(order_id)
        return None if order is None else order.state()

    def order_by_client_id(self, account: str, client_order_id: str) -> OrderState | None:
        """The state of the account's order with this client order id, open or done; None if never used."""
        found = self._by_client_id.get((account, client_order_id))
        return found.state() if isinstance(found, Order) else found

    def book_depth(self, symbol: str, depth: int | None = None, ts: int = 0) -> BookDepth | None:
        """The L2 book of `symbol` to `depth` levels per side (None = all), or None for an unknown symbol."""
        book = self._books.get(symbol)
        if book is None:
            return None
        return BookDepth.of(ts, symbol, book.seq, book.bids.depth(depth), book.asks.depth(depth))

    def symbols(self) -> list[SymbolParams]:
        """The registry entries of this partition's symbols (with their current halted flag)."""
        return [self._books[s].params() for s in sorted(self._books)]

    def resting_count(self) -> int:
        """How many orders rest on all books of the partition."""
        return len(self._orders)

    def level_counts(self) -> tuple[int, int]:
        """How many price levels the bids and the asks of all books of the partition have."""
        books = self._books.values()
        return sum(len(book.bids.levels) for book in books), sum(len(book.asks.levels) for book in books)

    # ------------------------------------------------------------------ state

    def validate(self) -> None:
        """Check every invariant; raise InvariantViolation naming the first one broken."""
        seen: set[int] = set()
        for symbol, book in self._books.items():
            _check(book.symbol == symbol, f"book {symbol} is filed under {book.symbol}")
            for own in (book.bids, book.asks):
                heap_keys = set(own.heap)
                for key, level in own.levels.items():
                    where = f"{symbol} {own.side.name} {level.price}"
                    _check(key == level.price * own.sign, f"{where}: key {key} does not match the price")
                    _check(key in heap_keys, f"{where}: no heap key")
                    _check(len(level) > 0, f"{where}: empty level is kept")
                    _check(level.total == sum(o.leaves for o in level), f"{where}: total != sum of leaves")
                    priority = -1
                    for order in level:
                        oid = order.order_id
                        _check(order.priority > priority, f"{where}: order {oid} breaks FIFO order")
                        priority = order.priority
                        _check(order.level is level, f"{where}: order {oid} points at another level")
                        _check(order.price == level.price, f"{where}: order {oid} has price {order.price}")
                        _check(
                            order.side is own.side and order.symbol == symbol,
                            f"{where}: order {oid} misfiled",
                        )
                        _check(
                            order.leaves > 0 and order.filled + order.leaves == order.qty,
                            f"{where}: order {oid} quantities {order.qty}/{order.filled}/{order.leaves}",
                        )
                        _check(self._orders.get(oid) is order, f"{where}: order {oid} not in the id index")
                        _check(oid not in seen, f"{where}: order {oid} rests twice")
                        seen.add(oid)
            _check_account_index(book)
            best_bid, best_ask = book.bids.best(), book.asks.best()
            _check(
                best_bid is None or best_ask is None or best_bid.price < best_ask.price,
                f"{symbol}: book is crossed",
            )
        _check(len(seen) == len(self._orders), "the id index holds orders that rest nowhere")
        for (account, cid), entry in self._by_client_id.items():
            _check(
                entry.account == account and entry.client_order_id == cid,
                f"client id {account}/{cid} misfiled",
            )
            if type(entry) is Order:
                _check(
                    self._orders.get(entry.order_id) is entry, f"client id {account}/{cid}: order not resting"
                )
        for order in self._orders.values():
            if order.client_order_id is not None:
                _check(
                    self._by_client_id.get((order.account, order.client_order_id)) is order,
                    f"order {order.order_id}: client id not indexed",
                )
        done_keys = [key for _, key in self._done]
        kept = {key for key, entry in self._by_client_id.items() if type(entry) is OrderState}
        _check(len(done_keys) == len(kept) and set(done_keys) == kept, "done orders and their offsets differ")
        finished = [offset for offset, _ in self._done]
        _check(finished == sorted(finished), "done orders are not oldest first")
        _check(
            not finished or finished[0] > self._offset - self._client_id_memory,
            f"a done order finished at {finished[0] if finished else None} is kept too long",
        )

    def state_hash(self) -> str:
        """SHA-256 of the whole state in canonical form: equal states hash equal, whatever their history.

        It hashes the snapshot, whose encoding depends only on the values it holds.
        """
        digest = hashlib.sha256()
        for piece in self.snapshot_pieces():
            digest.update(piece)
        return digest.hexdigest()

    def snapshot(self) -> bytes:
        """The whole state of the engine as bytes (the format is ``snapshot.py``'s).

        It builds a row per resting order: a caller taking it of a big engine pauses the garbage
        collector around it (the matcher does), which would otherwise walk them all and free nothing.
        """
        return b"".join(self.snapshot_pieces())

    def snapshot_pieces(self) -> Iterator[bytes]:
        """`snapshot()` in pieces, each made when asked for: a big state is written without being
        held whole. The engine must not change until the last piece is read."""
        return snapshot.pieces(self.partition, self._books, self._by_client_id, self._done)

    def restore(self, data: bytes) -> None:
        """Replace the whole state with one saved by `snapshot()` of an engine of the same partition.

        Like `snapshot()`, it builds a million objects from a million-order snapshot: restored with
        the garbage collector paused, it takes a third of the time.
        """
        state = snapshot.read(data, self.partition)
        self._books, self._orders, self._by_client_id, self._done = state


def _check_account_index(book: OrderBook) -> None:
    """The index by account holds exactly the book's resting orders (the same objects), by account."""
    scanned: dict[str, dict[int, Order]] = {}
    for own in (book.bids, book.asks):
        for level in own.levels.values():
            for order in level:
                scanned.setdefault(order.account, {})[order.order_id] = order
    # Orders compare by identity, so equal dicts hold the very orders that rest (and no empty dict).
    _check(book.by_account == scanned, f"{book.symbol}: the index by account differs from the resting orders")


def _is_member(value: object, enum: type[IntEnum]) -> bool:
    """Whether `value` is a member of `enum` itself (a plain int with a member's value is not)."""
    return any(value is member for member in enum)


def _qty_problem(book: OrderBook, qty: object) -> str | None:
    if type(qty) is not int or qty <= 0:
        return reasons.INVALID_QUANTITY
    if qty < book.min_qty:
        return reasons.QTY_BELOW_MIN
    if qty > book.max_qty:
        return reasons.QTY_ABOVE_MAX
    return None


def _price_problem(book: OrderBook, price: object) -> str | None:
    if type(price) is not int or price <= 0:
        return reasons.INVALID_PRICE
    band = book.band()
    if band is not None and not band[0] <= price <= band[1]:
        return reasons.PRICE_OUT_OF_BAND
    return None


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise InvariantViolation(problem)
