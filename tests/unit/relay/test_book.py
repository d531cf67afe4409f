"""The relay's book: levels best first, views at a depth, deltas between any two recent seqs, the checksum."""

from __future__ import annotations

import random
import zlib

import pytest

from relay.book import BookSide, L2Book, Level, Levels, Lots, Ticks, checksum, view_diff


def _book(bids: list[Level], asks: list[Level], seq: int = 10) -> L2Book:
    book = L2Book()
    book.load(seq, bids, asks)
    return book


def _apply(view: list[Level], delta: list[Level], depth: int, best_first: bool) -> list[Level]:
    """A client's view after a delta, as docs/websocket.md tells the client to apply it."""
    levels = dict(view)
    for price, qty in delta:
        if qty:
            levels[price] = qty
        else:
            levels.pop(price, None)
    ordered = sorted(levels.items(), reverse=best_first)
    assert len(ordered) <= depth  # the delta removes what leaves the view: no truncation is needed
    return ordered


def test_bids_are_best_first_from_the_highest_price() -> None:
    levels = Levels(BookSide.BUY)
    for price in (100, 102, 101):
        levels.set(Ticks(price), Lots(1))

    assert [price for price, _ in levels.top(10)] == [102, 101, 100]


def test_asks_are_best_first_from_the_lowest_price() -> None:
    levels = Levels(BookSide.SELL)
    for price in (100, 102, 101):
        levels.set(Ticks(price), Lots(1))

    assert [price for price, _ in levels.top(2)] == [100, 101]


def test_a_zero_quantity_removes_the_level_and_set_returns_the_old_one() -> None:
    levels = Levels(BookSide.SELL)
    levels.set(Ticks(100), Lots(5))

    old = levels.set(Ticks(100), Lots(0))

    assert (old, levels.qty(Ticks(100)), len(levels)) == (5, 0, 0)


def test_view_diff_sets_what_changed_and_zeroes_what_left() -> None:
    before = [(Ticks(10), Lots(1)), (Ticks(9), Lots(2)), (Ticks(8), Lots(3))]
    after = [(Ticks(10), Lots(1)), (Ticks(9), Lots(5)), (Ticks(7), Lots(4))]

    assert view_diff(before, after) == [(9, 5), (7, 4), (8, 0)]


def test_a_removed_level_inside_the_view_brings_in_the_next_one() -> None:
    book = _book([(Ticks(p), Lots(1)) for p in (105, 104, 103, 102, 101)], [])

    book.set_level(11, BookSide.BUY, Ticks(104), Lots(0))
    delta = book.delta_since(10, depth=3)

    assert delta is not None
    assert delta.bids == [(102, 1), (104, 0)]


def test_a_change_beyond_the_view_sends_no_level() -> None:
    book = _book([], [(Ticks(p), Lots(1)) for p in range(100, 110)])

    book.set_level(11, BookSide.SELL, Ticks(108), Lots(7))
    delta = book.delta_since(10, depth=5)

    assert delta is not None
    assert (delta.prev_seq, delta.seq, delta.asks, delta.bids) == (10, 11, [], [])


def test_a_seq_older_than_the_log_has_no_delta() -> None:
    book = L2Book(change_log=3)
    for seq in range(1, 6):
        book.set_level(seq, BookSide.BUY, Ticks(seq), Lots(1))

    assert book.delta_since(1, 25) is None
    assert book.delta_since(2, 25) is not None


def test_a_snapshot_forgets_the_log() -> None:
    book = L2Book()
    book.set_level(1, BookSide.BUY, Ticks(5), Lots(1))

    book.load(40, [(Ticks(6), Lots(2))], [])

    assert book.delta_since(1, 25) is None
    assert book.delta_since(40, 25) is not None


@pytest.mark.parametrize("seed", range(12))
def test_the_delta_since_any_logged_seq_turns_that_view_into_todays(seed: int) -> None:
    chance = random.Random(seed)
    depth = chance.choice([1, 3, 10])
    book = L2Book(change_log=400)
    history: dict[int, tuple[list[Level], list[Level]]] = {0: ([], [])}
    for seq in range(1, 300):
        side = chance.choice([BookSide.BUY, BookSide.SELL])
        price = Ticks(chance.randrange(90, 100) if side is BookSide.BUY else chance.randrange(100, 110))
        if chance.random() < 0.2:
            book.advance(seq)  # a trade: a seq without a level change
        else:
            book.set_level(seq, side, price, Lots(chance.choice([0, 0, 1, 2, 3])))
        history[seq] = (book.bids.top(depth), book.asks.top(depth))

    for since in chance.sample(range(300), 30):
        delta = book.delta_since(since, depth)
        assert delta is not None
        bids, asks = history[since]
        assert _apply(bids, delta.bids, depth, best_first=True) == book.bids.top(depth)
        assert _apply(asks, delta.asks, depth, best_first=False) == book.asks.top(depth)


def test_the_checksum_interleaves_the_best_levels_of_each_side() -> None:
    bids = [(Ticks(100), Lots(5)), (Ticks(99), Lots(1))]
    asks = [(Ticks(101), Lots(2))]

    found = checksum(bids, asks, lambda p: f"{p / 100:.2f}", lambda q: f"{q / 10:.1f}")

    assert found == zlib.crc32(b"1.00:0.5:1.01:0.2:0.99:0.1")


def test_the_checksum_covers_25_levels_only_and_an_empty_book_is_zero() -> None:
    many = [(Ticks(p), Lots(1)) for p in range(30)]

    assert checksum(many, [], str, str) == checksum(many[:25], [], str, str)
    assert checksum(many, [], str, str) != checksum(many[:24], [], str, str)
    assert checksum([], [], str, str) == 0
