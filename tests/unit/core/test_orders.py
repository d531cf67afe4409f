"""Orders and matching: limit and market, GTC/IOC/FOK, post-only, price-time priority, partial fills."""

from __future__ import annotations

from matcher.core import (
    BookLevel,
    Fill,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderType,
    Rejected,
    Side,
    SymbolParams,
    TimeInForce,
    Trade,
    reasons,
)
from tests.unit.core.venue import SYMBOL, NewVenue, buy, makers, of_type, sell


def test_limit_order_that_does_not_cross_rests_on_the_book(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(5, 101))

    events = venue.send(buy(3, 100))

    assert [type(e) for e in events] == [OrderAccepted, BookLevel]
    assert venue.book().bids == ((100, 3, 1),)
    assert venue.book().asks == ((101, 5, 1),)


def test_crossing_limit_order_trades_at_the_resting_orders_price(new_venue: NewVenue) -> None:
    venue = new_venue()
    maker = venue.place(sell(5, 100, account="bob"))

    events = venue.send(buy(5, 103))

    [fill] = of_type(events, Fill)
    assert (fill.price, fill.qty, fill.maker_order_id) == (100, 5, maker)
    assert venue.book().bids == () and venue.book().asks == ()


def test_matching_takes_the_best_price_first(new_venue: NewVenue) -> None:
    venue = new_venue()
    worse = venue.place(sell(1, 102))
    best = venue.place(sell(1, 100))
    middle = venue.place(sell(1, 101))

    events = venue.send(buy(3, 102))

    assert makers(events) == [best, middle, worse]
    assert [f.price for f in of_type(events, Fill)] == [100, 101, 102]


def test_matching_is_first_in_first_out_within_a_price(new_venue: NewVenue) -> None:
    venue = new_venue()
    first = venue.place(buy(2, 100, account="bob"))
    second = venue.place(buy(2, 100, account="carol"))
    third = venue.place(buy(2, 100, account="dave"))

    events = venue.send(sell(5, 100))

    assert makers(events) == [first, second, third]
    assert [f.qty for f in of_type(events, Fill)] == [2, 2, 1]
    assert venue.book().bids == ((100, 1, 1),)


def test_partial_fill_leaves_the_rest_of_the_maker_on_the_book(new_venue: NewVenue) -> None:
    venue = new_venue()
    maker = venue.place(sell(10, 100, account="bob"))

    events = venue.send(buy(4, 100))

    [fill] = of_type(events, Fill)
    assert (fill.qty, fill.maker_leaves, fill.taker_leaves) == (4, 6, 0)
    state = venue.engine.order_state(maker)
    assert state is not None and (state.filled, state.leaves, state.status) == (4, 6, "PARTIALLY_FILLED")


def test_partial_fill_of_a_limit_taker_rests_its_rest_at_its_own_price(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(3, 100, account="bob"))

    taker = venue.place(buy(10, 101))

    assert venue.book().bids == ((101, 7, 1),)
    state = venue.engine.order_state(taker)
    assert state is not None and (state.filled, state.leaves) == (3, 7)


def test_market_order_fills_what_it_can_and_the_rest_is_cancelled_for_no_liquidity(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    venue.place(sell(3, 100, account="bob"))
    venue.place(sell(2, 105, account="bob"))

    events = venue.send(buy(10))

    assert [f.qty for f in of_type(events, Fill)] == [3, 2]
    [rest] = of_type(events, OrderCancelled)
    assert (rest.cancelled_qty, rest.leaves, rest.reason) == (5, 0, reasons.NO_LIQUIDITY)
    assert venue.book().asks == () and venue.book().bids == ()


def test_market_order_on_an_empty_side_is_cancelled_whole(new_venue: NewVenue) -> None:
    venue = new_venue()

    events = venue.send(sell(4))

    assert [type(e) for e in events] == [OrderAccepted, OrderCancelled]
    assert events[1].cancelled_qty == 4 and events[1].reason == reasons.NO_LIQUIDITY


def test_market_order_walks_no_further_than_the_price_band(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL, band_bps=500, reference_price=100))  # 95..105 before any trade
    venue.place(sell(1, 102, account="bob"))
    venue.place(sell(1, 105, account="bob"))
    venue.place(buy(1, 99, account="bob"))
    venue.send(sell(1, 99, account="carol"))  # the last trade, 99, moves the band to 95..103

    events = venue.send(buy(3))

    assert [f.price for f in of_type(events, Fill)] == [102]
    assert of_type(events, OrderCancelled)[0].cancelled_qty == 2
    assert venue.book().asks == ((105, 1, 1),)


def test_ioc_limit_order_trades_what_it_can_and_its_rest_expires(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(2, 100, account="bob"))

    events = venue.send(buy(5, 100, time_in_force=TimeInForce.IOC))

    assert [f.qty for f in of_type(events, Fill)] == [2]
    [expired] = of_type(events, OrderExpired)
    assert (expired.expired_qty, expired.reason) == (3, reasons.IMMEDIATE_OR_CANCEL)
    assert venue.book().bids == ()


def test_fok_order_fills_completely_when_the_book_can_fill_it(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(2, 100, account="bob"))
    venue.place(sell(3, 101, account="bob"))

    events = venue.send(buy(5, 101, time_in_force=TimeInForce.FOK))

    assert sum(f.qty for f in of_type(events, Fill)) == 5
    assert of_type(events, OrderExpired) == []


def test_fok_order_that_cannot_fill_completely_expires_and_leaves_the_book_untouched(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    venue.place(sell(2, 100, account="bob"))
    venue.place(sell(3, 102, account="bob"))
    before = venue.book()

    events = venue.send(buy(5, 101, time_in_force=TimeInForce.FOK))

    assert [type(e) for e in events] == [OrderAccepted, OrderExpired]
    assert (events[1].expired_qty, events[1].reason) == (5, reasons.FOK_NOT_FILLABLE)
    assert venue.book() == before


def test_post_only_order_rests_when_it_would_not_take(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(2, 101, account="bob"))

    venue.place(buy(2, 100, post_only=True))

    assert venue.book().bids == ((100, 2, 1),)


def test_post_only_order_that_would_take_is_rejected_not_repriced(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(2, 101, account="bob"))

    events = venue.send(buy(2, 101, post_only=True))

    assert [type(e) for e in events] == [Rejected]
    assert events[0].reason == reasons.POST_ONLY_WOULD_TAKE
    assert venue.book().bids == () and venue.book().asks == ((101, 2, 1),)


def test_sell_orders_match_against_bids_from_the_highest_price_down(new_venue: NewVenue) -> None:
    venue = new_venue()
    low = venue.place(buy(1, 98, account="bob"))
    high = venue.place(buy(1, 100, account="bob"))

    events = venue.send(sell(2, 98))

    assert makers(events) == [high, low]
    assert all(f.aggressor_side is Side.SELL for f in of_type(events, Fill))


def test_each_match_is_one_fill_and_one_public_trade(new_venue: NewVenue) -> None:
    venue = new_venue()
    maker = venue.place(sell(3, 100, account="bob", client_order_id="b-1"))

    events = venue.send(buy(3, 100, ts=77, client_order_id="a-1"))

    [fill] = of_type(events, Fill)
    [trade] = of_type(events, Trade)
    assert fill.taker_account == "alice" and fill.maker_account == "bob"
    assert (fill.taker_client_order_id, fill.maker_client_order_id) == ("a-1", "b-1")
    assert (trade.price, trade.qty, trade.maker_order_id, trade.taker_order_id) == (
        100,
        3,
        maker,
        fill.taker_order_id,
    )
    assert trade.aggressor_side is Side.BUY and trade.ts == 77


def test_accepted_event_echoes_the_order(new_venue: NewVenue) -> None:
    venue = new_venue()

    events = venue.send(buy(3, 100, ts=5, client_order_id="x"))

    accepted = events[0]
    assert type(accepted) is OrderAccepted
    assert (accepted.ts, accepted.side, accepted.order_type, accepted.price, accepted.qty) == (
        5,
        Side.BUY,
        OrderType.LIMIT,
        100,
        3,
    )
    assert accepted.client_order_id == "x" and accepted.time_in_force is TimeInForce.GTC
