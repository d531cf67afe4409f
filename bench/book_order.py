"""`exchange bench book-order`: what reading a deep book best price first costs, before and after.

Builds one symbol whose ask side holds ``--levels`` price levels (one order each, made in a
shuffled price order, a tenth more levels made then cancelled so that the side's heap holds
keys of levels that are gone, as it does in service), then times, per call:

- fill-or-kill buys: one not fillable within its limit five levels deep, one fillable from the
  best three levels (the three are put back, untimed, after each call), one market order larger
  than the whole side (the worst case: its check reads every level);
- L2 depth queries: ``book_depth`` to 10 and to 100 levels, and the whole side;
- what one account with a single resting order asks of that book (``account_reads``): a
  QueryOpenOrders and a CancelAll (its order put back, untimed, after each call).

Each is measured twice in the same run on the same book: ``before`` with the side's reads
done as they were (every read sorts every key, ``FullSortBook`` below; an account's orders found
by scanning every resting order, ``ScanningOrderBook``) and ``after`` with the book as it is.
With ``--small-levels N`` the fill-or-kill calls are also timed on a book of N levels
(books are mostly that small). With ``--flow FLOW.csv`` (written by
../shared/bench/orderflow.py) it also replays the flow as ``exchange bench core`` does and
reports its throughput and totals, to show that adding, cancelling and matching kept their speed.
Prints one JSON line; times in microseconds of CPU per call, the best of ``--repeat`` rounds
(a round of each kind in turn).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import core as core_bench
from matcher.core import (
    Cancel,
    CancelAll,
    MatchingEngine,
    NewOrder,
    OrderCancelled,
    OrderExpired,
    OrderType,
    QueryOpenOrders,
    Side,
    SymbolParams,
    TimeInForce,
    command_id,
)
from matcher.core.book import Book, Order, OrderBook, PriceLevel, by_order_id

PARTITION = 0
SYMBOL = "DEEP"
MAKER = "maker"
TAKER = "taker"
LONELY = "lonely"  # an account with one resting order, on a book of the maker's
FIRST_PRICE = 1_000_000
QTY = 10  # of every resting order
Levels = tuple[tuple[int, int, int], ...]  # (price, qty, order_count) per level, best first
ROUND_SECONDS = 0.05  # a round repeats a call at least this long
# CPU time of this process: what other work on a shared machine does in the meantime is not counted.
clock = time.process_time


class FullSortBook(Book):
    """A book side whose reads sort every key on each call, as they all did before the heap walk."""

    __slots__ = ()

    def walk_best_first(self) -> Iterator[PriceLevel]:
        levels = self.levels
        return (levels[k] for k in sorted(levels))

    def depth(self, max_levels: int | None = None) -> tuple[tuple[int, int, int], ...]:
        levels = self.levels
        return tuple((levels[k].price, levels[k].total, len(levels[k])) for k in sorted(levels)[:max_levels])


class ScanningOrderBook(OrderBook):
    """A symbol whose account reads scan every resting order, as they all did before the index."""

    __slots__ = ()

    def owned(self, account: str) -> list[Order]:
        found = [
            order
            for own in (self.bids, self.asks)
            for level in own.levels.values()
            for order in level
            if order.account == account
        ]
        found.sort(key=by_order_id)
        return found


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--levels", type=int, default=100_000, help="price levels on the deep side")
    parser.add_argument("--small-levels", type=int, default=150, help="levels of the small book (0: skip)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per measurement; the best counts")
    parser.add_argument("--seed", type=int, default=1, help="of the shuffled order the levels are made in")
    parser.add_argument("--flow", type=Path, help="also replay this orderflow.py CSV (as `bench core`)")


def run(args: argparse.Namespace) -> int:
    result: dict[str, object] = {"levels": args.levels, **measure_book(args.levels, args.repeat, args.seed)}
    if args.small_levels:
        small = measure_book(args.small_levels, args.repeat, args.seed, depth=False)
        result["small_book"] = {"levels": args.small_levels, **small}
    if args.flow is not None:
        result["flow"] = replay_flow(args.flow, args.repeat)
    print(json.dumps(result))
    return 0


class DeepBook:
    """An engine with one symbol whose ask side holds `levels` levels of one order of QTY each."""

    def __init__(self, levels: int, seed: int) -> None:
        self.engine = MatchingEngine(PARTITION, [SymbolParams(SYMBOL)])
        self.offset = 0
        made = levels + levels // 10
        prices = [FIRST_PRICE + i for i in range(made)]
        random.Random(seed).shuffle(prices)
        ids = [self.sell(price) for price in prices]
        for order_id in random.Random(seed + 1).sample(ids, made - levels):
            self.send(Cancel(self.offset, SYMBOL, MAKER, order_id))
        # The engine's own side objects: the baseline swaps their class, nothing else.
        self.sides = (self.engine._books[SYMBOL].bids, self.engine._books[SYMBOL].asks)
        self.best = [level.price for level in self.sides[1].levels_best_first()[:5]]

    def send(self, command: NewOrder | Cancel | CancelAll | QueryOpenOrders) -> list[object]:
        self.offset += 1
        return list(self.engine.apply(command, self.offset))

    def sell(self, price: int) -> int:
        self.send(NewOrder(self.offset, SYMBOL, MAKER, Side.SELL, OrderType.LIMIT, QTY, price))
        return command_id(PARTITION, self.offset)

    def fok_buy(self, qty: int, price: int | None) -> list[object]:
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        return self.send(
            NewOrder(
                self.offset, SYMBOL, TAKER, Side.BUY, order_type, qty, price, time_in_force=TimeInForce.FOK
            )
        )

    def lonely_buy(self) -> None:
        """The lonely account's one order: a bid below every ask."""
        self.send(NewOrder(self.offset, SYMBOL, LONELY, Side.BUY, OrderType.LIMIT, QTY, FIRST_PRICE - 1))

    def levels(self) -> list[tuple[Levels, Levels]]:
        """(bids, asks) as depth queries to 10 and 100 levels and to every level answer them."""
        answers = []
        for depth in (10, 100, None):
            answer = self.engine.book_depth(SYMBOL, depth)
            assert answer is not None
            answers.append((answer.bids, answer.asks))
        return answers

    def use(self, side_class: type[Book]) -> None:
        for side in self.sides:
            side.__class__ = side_class


def measure_book(levels: int, repeat: int, seed: int, *, depth: bool = True) -> dict[str, object]:
    """before/after µs per call of the fill-or-kill checks (and depth queries) on a book of `levels`."""
    book = DeepBook(levels, seed)
    near, few = book.best[4], book.best[2]

    def fok_unfillable_near() -> float:
        started = clock()
        events = book.fok_buy(5 * QTY + 1, near)
        elapsed = clock() - started
        assert type(events[-1]) is OrderExpired
        return elapsed

    def fok_fillable_few() -> float:
        started = clock()
        events = book.fok_buy(3 * QTY, few)
        elapsed = clock() - started
        assert type(events[-1]) is not OrderExpired
        for price in book.best[:3]:  # put back what the order took
            book.sell(price)
        return elapsed

    def fok_unfillable_all() -> float:
        started = clock()
        events = book.fok_buy(levels * QTY + 1, None)
        elapsed = clock() - started
        assert type(events[-1]) is OrderExpired
        return elapsed

    cases: dict[str, Callable[[], float]] = {
        "fok_unfillable_5_levels_us": fok_unfillable_near,
        "fok_fillable_3_levels_us": fok_fillable_few,
        "fok_unfillable_whole_side_us": fok_unfillable_all,
    }
    if depth:
        cases["depth_10_us"] = timed(lambda: book.engine.book_depth(SYMBOL, 10))
        cases["depth_100_us"] = timed(lambda: book.engine.book_depth(SYMBOL, 100))
        cases["depth_all_us"] = timed(lambda: book.engine.book_depth(SYMBOL))
    result = before_and_after(
        cases, lambda before: book.use(FullSortBook if before else Book), book.levels, repeat
    )
    if depth:
        result["account_reads"] = measure_account_reads(book, repeat)
    book.engine.validate()
    return result


def measure_account_reads(book: DeepBook, repeat: int) -> dict[str, object]:
    """before/after µs per call of a one-order account's QueryOpenOrders and CancelAll on `book`."""
    book.lonely_buy()
    symbol = book.engine._books[SYMBOL]

    def open_orders() -> float:
        started = clock()
        [answer] = book.send(QueryOpenOrders(book.offset, LONELY, SYMBOL))
        elapsed = clock() - started
        assert len(answer.orders) == 1  # type: ignore[attr-defined]
        return elapsed

    def cancel_all() -> float:
        started = clock()
        events = book.send(CancelAll(book.offset, SYMBOL, LONELY))
        elapsed = clock() - started
        assert type(events[0]) is OrderCancelled and len(events) == 2
        book.lonely_buy()
        return elapsed

    def use(before: bool) -> None:
        symbol.__class__ = ScanningOrderBook if before else OrderBook

    cases = {"open_orders_us": open_orders, "cancel_all_us": cancel_all}

    def answer() -> list[tuple[int | None, int]]:  # a CancelAll puts a new order back: compare its terms
        return [(order.price, order.leaves) for order in book.engine.open_orders(LONELY, SYMBOL)]

    result = before_and_after(cases, use, answer, repeat)
    return {"resting_orders": book.engine.resting_count(), "account_orders": 1, **result}


def before_and_after(
    cases: dict[str, Callable[[], float]],
    use: Callable[[bool], None],
    answer: Callable[[], object],
    repeat: int,
) -> dict[str, object]:
    """Each case's best µs per call the old way (`use(True)`) and the new, with the same answers."""
    result: dict[str, object] = {}
    for name, case in cases.items():
        best = {"before": float("inf"), "after": float("inf")}
        answers: dict[str, object] = {}
        for _ in range(max(1, repeat)):  # before and after take turns, so both meet the same load
            for when in ("before", "after"):
                use(when == "before")
                best[when] = min(best[when], seconds_per_call(case))
                answers[when] = answer()
        use(False)
        assert answers["before"] == answers["after"], "the two ways of reading answer differently"
        before, after = (round(best[when] * 1e6, 2) for when in ("before", "after"))
        result[name] = {"before": before, "after": after, "speedup": round(before / after, 1)}
    return result


def timed(call: Callable[[], object]) -> Callable[[], float]:
    def case() -> float:
        started = clock()
        call()
        return clock() - started

    return case


def seconds_per_call(case: Callable[[], float]) -> float:
    """Seconds per call of `case` (which returns the seconds of its timed part), over one round."""
    case()  # warm up (and let a walk tidy the heap a round of the other kind left, see Book)
    spent, calls, started = 0.0, 0, clock()
    while calls < 3 or clock() - started < ROUND_SECONDS:
        spent += case()
        calls += 1
    return spent / calls


def replay_flow(path: Path, repeat: int) -> dict[str, object]:
    """`exchange bench core`'s numbers for the flow at `path`: throughput and totals."""
    commands, symbols = core_bench.load_flow(path)
    best = min(
        core_bench.timed_replay(MatchingEngine(PARTITION, symbols), commands) for _ in range(max(1, repeat))
    )
    totals = core_bench.count_totals(MatchingEngine(PARTITION, symbols), commands)
    return {
        "actions": len(commands),
        **totals,
        "seconds": round(best, 4),
        "actions_per_s": round(len(commands) / best),
    }
