"""Self-trade prevention: the incoming order's mode decides what happens when it meets its own account."""

from __future__ import annotations

from matcher.core import (
    Cancel,
    CancelAll,
    Fill,
    OrderCancelled,
    OrderExpired,
    SelfTradePrevention,
    TimeInForce,
    reasons,
)
from tests.unit.core.venue import NewVenue, buy, makers, of_type, sell

STP = SelfTradePrevention


def cancellations(events: list[object]) -> list[tuple[int, int, int]]:
    """(order id, cancelled qty, leaves) of each self-trade prevention cancellation, in order."""
    return [
        (c.order_id, c.cancelled_qty, c.leaves)
        for c in of_type(events, OrderCancelled)  # type: ignore[arg-type]
        if c.reason == reasons.SELF_TRADE_PREVENTION
    ]


def prevented_matches(events: list[object]) -> list[tuple[int, int | None, SelfTradePrevention | None]]:
    """(cancelled order id, counterparty order id, mode) of each self-trade prevention cancellation."""
    return [
        (c.order_id, c.counterparty_order_id, c.stp_mode)
        for c in of_type(events, OrderCancelled)  # type: ignore[arg-type]
        if c.reason == reasons.SELF_TRADE_PREVENTION
    ]


def test_orders_of_one_account_trade_with_each_other_when_prevention_is_off(new_venue: NewVenue) -> None:
    venue = new_venue()
    maker = venue.place(sell(5, 100))

    events = venue.send(buy(5, 100, stp=STP.NONE))

    assert makers(events) == [maker]


def test_cancel_newest_cancels_the_incoming_orders_rest_and_keeps_the_resting_order(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    other = venue.place(sell(2, 100, account="bob"))
    own = venue.place(sell(5, 100))
    taker = venue.place(buy(10, 100, stp=STP.CANCEL_NEWEST))

    assert venue.book().asks == ((100, 5, 1),)
    assert venue.engine.order_state(own) is not None
    assert venue.engine.order_state(taker) is None
    assert other not in [o.order_id for o in venue.engine.open_orders("bob")]


def test_cancel_newest_events_name_the_incoming_order_and_its_rest(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(2, 100, account="bob"))
    venue.place(sell(5, 100))

    events = venue.send(buy(10, 100, stp=STP.CANCEL_NEWEST))

    taker = events[0].order_id
    assert cancellations(events) == [(taker, 8, 0)]
    assert [f.qty for f in of_type(events, Fill)] == [2]


def test_cancel_oldest_cancels_the_resting_order_and_the_incoming_order_goes_on(new_venue: NewVenue) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))
    other = venue.place(sell(3, 100, account="bob"))

    events = venue.send(buy(4, 100, stp=STP.CANCEL_OLDEST))

    assert cancellations(events) == [(own, 5, 0)]
    assert makers(events) == [other]
    assert venue.book().asks == ()
    assert venue.book().bids == ((100, 1, 1),)


def test_cancel_both_cancels_the_resting_order_and_the_incoming_orders_rest(new_venue: NewVenue) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))
    venue.place(sell(3, 100, account="bob"))

    events = venue.send(buy(4, 100, stp=STP.CANCEL_BOTH))

    taker = events[0].order_id
    assert cancellations(events) == [(own, 5, 0), (taker, 4, 0)]
    assert of_type(events, Fill) == []
    assert venue.book().asks == ((100, 3, 1),) and venue.book().bids == ()


def test_decrement_and_cancel_with_a_larger_resting_order_shrinks_it_and_cancels_the_incoming_order(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    own = venue.place(sell(10, 100))

    events = venue.send(buy(4, 100, stp=STP.DECREMENT_AND_CANCEL))

    taker = events[0].order_id
    assert cancellations(events) == [(own, 4, 6), (taker, 4, 0)]
    assert venue.book().asks == ((100, 6, 1),)
    state = venue.engine.order_state(own)
    assert state is not None and (state.qty, state.leaves) == (6, 6)


def test_decrement_and_cancel_with_a_larger_incoming_order_cancels_the_resting_one_and_goes_on(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    own = venue.place(sell(4, 100))
    other = venue.place(sell(3, 100, account="bob"))

    events = venue.send(buy(10, 100, stp=STP.DECREMENT_AND_CANCEL))

    taker = events[0].order_id
    assert cancellations(events) == [(own, 4, 0), (taker, 4, 6)]
    assert makers(events) == [other]
    assert venue.book().bids == ((100, 3, 1),)
    state = venue.engine.order_state(taker)
    assert state is not None and (state.qty, state.filled, state.leaves) == (6, 3, 3)


def test_decrement_and_cancel_of_equal_sizes_cancels_both(new_venue: NewVenue) -> None:
    venue = new_venue()
    own = venue.place(sell(4, 100))

    events = venue.send(buy(4, 100, stp=STP.DECREMENT_AND_CANCEL))

    assert cancellations(events) == [(own, 4, 0), (events[0].order_id, 4, 0)]
    assert venue.book().asks == () and venue.book().bids == ()


def test_prevention_applies_only_to_orders_of_the_same_account(new_venue: NewVenue) -> None:
    venue = new_venue()
    theirs = venue.place(sell(5, 100, account="bob"))

    events = venue.send(buy(5, 100, stp=STP.CANCEL_BOTH))

    assert makers(events) == [theirs] and cancellations(events) == []


def test_fok_order_that_would_meet_its_own_order_before_it_is_complete_expires_untouched(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    venue.place(sell(2, 100, account="bob"))
    venue.place(sell(5, 100))
    venue.place(sell(5, 100, account="bob"))
    before = venue.book()

    events = venue.send(buy(6, 100, time_in_force=TimeInForce.FOK, stp=STP.CANCEL_NEWEST))

    assert of_type(events, OrderExpired)[0].reason == reasons.FOK_NOT_FILLABLE
    assert venue.book() == before


def test_fok_order_with_cancel_oldest_counts_only_other_accounts_liquidity(new_venue: NewVenue) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))
    venue.place(sell(6, 100, account="bob"))

    events = venue.send(buy(6, 100, time_in_force=TimeInForce.FOK, stp=STP.CANCEL_OLDEST))

    assert cancellations(events) == [(own, 5, 0)]
    assert sum(f.qty for f in of_type(events, Fill)) == 6


def test_cancel_newest_names_the_resting_order_as_the_counterparty_of_the_incoming_orders_cancel(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))

    events = venue.send(buy(10, 100, stp=STP.CANCEL_NEWEST))

    assert prevented_matches(events) == [(events[0].order_id, own, STP.CANCEL_NEWEST)]


def test_cancel_oldest_names_the_incoming_order_as_the_counterparty_of_the_resting_orders_cancel(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))

    events = venue.send(buy(4, 100, stp=STP.CANCEL_OLDEST))

    assert prevented_matches(events) == [(own, events[0].order_id, STP.CANCEL_OLDEST)]


def test_cancel_both_names_each_order_as_the_others_counterparty(new_venue: NewVenue) -> None:
    venue = new_venue()
    own = venue.place(sell(5, 100))

    events = venue.send(buy(4, 100, stp=STP.CANCEL_BOTH))

    taker = events[0].order_id
    assert prevented_matches(events) == [(own, taker, STP.CANCEL_BOTH), (taker, own, STP.CANCEL_BOTH)]


def test_decrement_and_cancel_names_the_counterparty_and_the_mode_of_a_cut_that_leaves_the_order_open(
    new_venue: NewVenue,
) -> None:
    venue = new_venue()
    own = venue.place(sell(10, 100))

    events = venue.send(buy(4, 100, stp=STP.DECREMENT_AND_CANCEL))

    taker = events[0].order_id
    mode = STP.DECREMENT_AND_CANCEL
    assert prevented_matches(events) == [(own, taker, mode), (taker, own, mode)]


def test_cancels_for_any_other_reason_name_no_counterparty_and_no_mode(new_venue: NewVenue) -> None:
    venue = new_venue()
    first = venue.place(sell(5, 100, stp=STP.CANCEL_BOTH))
    venue.place(sell(5, 101, stp=STP.CANCEL_BOTH))

    events = venue.send(Cancel(2, "ABC", "alice", first)) + venue.send(CancelAll(3, "ABC", "alice"))

    cancels = of_type(events, OrderCancelled)
    assert len(cancels) == 2
    assert [(c.counterparty_order_id, c.stp_mode) for c in cancels] == [(None, None), (None, None)]
