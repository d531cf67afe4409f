"""A book side read best price first without a sort: the heap walk, depth to N levels, fill-or-kill."""

from __future__ import annotations

from itertools import islice

from hypothesis import given
from hypothesis import strategies as st

from matcher.core import Cancel, Fill, OrderExpired, Side, TimeInForce, reasons
from matcher.core.book import Book
from tests.unit.core.conftest import CORE_SETTINGS
from tests.unit.core.venue import SYMBOL, Venue, buy, of_type, sell

# (make a level at price, or else drop the level at price when there is one)
level_changes = st.lists(st.tuples(st.booleans(), st.integers(1, 60)), max_size=400)


def side_after(side: Side, changes: list[tuple[bool, int]]) -> Book:
    """A book side after `changes`, each level holding one unit per time it was made."""
    book = Book(side)
    for make, price in changes:
        if make:
            level = book.level_at(price)
            level.append(None)  # type: ignore[arg-type]  # the walk never reads the orders
            level.total += 1
        elif price * book.sign in book.levels:
            book.remove_level(book.levels[price * book.sign])
    return book


@CORE_SETTINGS
@given(st.sampled_from(Side), level_changes)
def test_walk_gives_every_level_once_best_first_as_a_full_sort_does(
    side: Side, changes: list[tuple[bool, int]]
) -> None:
    book = side_after(side, changes)

    assert list(book.walk_best_first()) == book.levels_best_first()


@CORE_SETTINGS
@given(st.sampled_from(Side), level_changes, st.integers(0, 70))
def test_depth_to_n_levels_is_the_first_n_of_a_full_sort(
    side: Side, changes: list[tuple[bool, int]], n: int
) -> None:
    book = side_after(side, changes)
    full = book.depth()

    assert book.depth(n) == full[:n]
    assert list(islice(book.walk_best_first(), n)) == book.levels_best_first()[:n]


def test_walk_skips_levels_that_are_gone_and_keys_pushed_twice() -> None:
    book = side_after(Side.BUY, [(True, p) for p in range(1, 101)])
    for price in (100, 98, 97, 50):
        book.remove_level(book.levels[-price])
    book.level_at(98).append(None)  # type: ignore[arg-type]  # made again: its key is in the heap twice

    assert len(book.heap) > len(book.levels)
    assert [level.price for level in islice(book.walk_best_first(), 3)] == [99, 98, 96]
    assert [level.price for level in book.walk_best_first()] == [
        p for p in range(99, 0, -1) if p not in (97, 50)
    ]


def deep_venue(levels: int, qty: int = 2) -> tuple[Venue, list[int]]:
    """A venue whose asks hold one order of `qty` at each of most prices from 1001 to 1000 + `levels`.

    The levels are made worst first; every fifth is then cancelled while the others rest, so the
    heap still holds the keys of levels that are gone among the live ones. Returns the venue and
    the live prices, best first.
    """
    venue = Venue()
    made = {1000 + p: venue.place(sell(qty, 1000 + p, account="bob")) for p in range(levels, 0, -1)}
    gone = [1000 + p for p in range(levels, 0, -5)]
    for price in gone:
        venue.send(Cancel(1, SYMBOL, "bob", made[price]))
    asks = venue.engine._books[SYMBOL].asks
    assert set(gone) <= set(asks.heap)
    return venue, sorted(set(made) - set(gone))


def test_depth_query_to_n_levels_of_a_deep_book_answers_the_best_n() -> None:
    venue, live = deep_venue(200)

    depth = venue.engine.book_depth(SYMBOL, 3)

    assert depth is not None
    assert depth.asks == tuple((price, 2, 1) for price in live[:3])
    assert depth.asks == venue.book().asks[:3]


def test_fok_that_the_levels_up_to_its_limit_fill_exactly_fills_on_a_deep_book() -> None:
    venue, live = deep_venue(200)

    events = venue.send(buy(2 * 5, live[4], time_in_force=TimeInForce.FOK))

    assert [f.price for f in of_type(events, Fill)] == live[:5]
    assert venue.book().asks[0][0] == live[5]


def test_fok_one_lot_beyond_the_levels_up_to_its_limit_expires_on_a_deep_book() -> None:
    venue, live = deep_venue(200)
    before = venue.book()

    events = venue.send(buy(2 * 5 + 1, live[4], time_in_force=TimeInForce.FOK))

    [expired] = of_type(events, OrderExpired)
    assert (expired.expired_qty, expired.reason) == (11, reasons.FOK_NOT_FILLABLE)
    assert venue.book().asks == before.asks


def test_fok_that_reads_most_of_a_deep_book_fills_when_it_can_and_expires_when_it_cannot() -> None:
    venue, live = deep_venue(200, qty=1)  # far past what the walk reads before it sorts the rest

    too_big = venue.send(buy(len(live) + 1, time_in_force=TimeInForce.FOK))
    fits = venue.send(buy(len(live) - 1, time_in_force=TimeInForce.FOK))

    assert of_type(too_big, OrderExpired)
    assert [f.price for f in of_type(fits, Fill)] == live[:-1]
    assert venue.book().asks == ((live[-1], 1, 1),)


def test_restored_engine_reads_depth_and_fok_as_the_original() -> None:
    original, live = deep_venue(200)
    copy = Venue()
    copy.engine.restore(original.engine.snapshot())
    copy.offset = original.offset

    assert copy.engine.book_depth(SYMBOL, 4) == original.engine.book_depth(SYMBOL, 4)
    for order in (
        buy(2 * 5 + 1, live[4], time_in_force=TimeInForce.FOK),
        buy(7, live[3], time_in_force=TimeInForce.FOK),
    ):
        assert copy.send(order) == original.send(order)
    assert copy.engine.state_hash() == original.engine.state_hash()


def test_depth_after_the_best_level_is_emptied_and_made_again_many_times_is_still_the_best_n() -> None:
    venue, live = deep_venue(200)
    engine, asks = venue.engine, venue.engine._books[SYMBOL].asks
    for _ in range(100):  # each time the best level goes and comes back, its key is pushed again
        [best] = [order_id for order_id, order in engine._orders.items() if order.price == live[0]]
        engine.apply(Cancel(1, SYMBOL, "bob", best), venue.offset)
        engine.apply(sell(2, live[0], account="bob"), venue.offset + 1)
        venue.offset += 2
    assert len(asks.heap) >= len(asks.levels) + 100

    depth = engine.book_depth(SYMBOL, 3)

    assert depth is not None and depth.asks == tuple((price, 2, 1) for price in live[:3])
    assert asks.heap == sorted(asks.levels)  # the walk read far, sorted, and kept the sort as the heap
    engine.validate()
    assert engine.book_depth(SYMBOL, 3) == depth
