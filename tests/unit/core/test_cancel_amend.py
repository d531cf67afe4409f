"""Cancel (by order id, by client order id, all of an account's orders) and amend."""

from __future__ import annotations

import pytest

from matcher.core import (
    Amend,
    BookLevel,
    Cancel,
    CancelAll,
    Fill,
    Halt,
    OrderAmended,
    OrderCancelled,
    Rejected,
    SymbolParams,
    reasons,
)
from tests.unit.core.venue import SYMBOL, NewVenue, Venue, buy, makers, of_type, sell


def test_cancel_takes_the_order_off_the_book_and_reports_its_open_quantity(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))
    venue.send(sell(2, 100, account="bob"))

    events = venue.send(Cancel(2, SYMBOL, "alice", order))

    assert [type(e) for e in events] == [OrderCancelled, BookLevel]
    assert (events[0].cancelled_qty, events[0].leaves, events[0].reason) == (3, 0, reasons.USER_REQUESTED)
    assert (events[1].price, events[1].qty, events[1].order_count) == (100, 0, 0)
    assert venue.book().bids == () and venue.engine.order_state(order) is None


def test_cancel_by_client_order_id(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100, client_order_id="mine-1"))

    events = venue.send(Cancel(2, SYMBOL, "alice", client_order_id="mine-1"))

    assert events[0].order_id == order and type(events[0]) is OrderCancelled
    assert venue.book().bids == ()


@pytest.mark.fast_engine_only
@pytest.mark.parametrize(
    ("cancel", "reason"),
    [
        (Cancel(2, SYMBOL, "alice", 12345), reasons.UNKNOWN_ORDER),
        (Cancel(2, SYMBOL, "alice", client_order_id="never-used"), reasons.UNKNOWN_ORDER),
        (Cancel(2, SYMBOL, "bob", 0), reasons.NOT_ORDER_OWNER),
        (Cancel(2, "XYZ", "alice", 0), reasons.UNKNOWN_SYMBOL),
        (Cancel(2, SYMBOL, "alice"), reasons.MISSING_ORDER_REFERENCE),
    ],
)
def test_cancel_that_names_no_open_order_of_the_account_is_rejected_and_changes_nothing(
    cancel: Cancel, reason: str
) -> None:
    venue = Venue()
    venue.place(buy(5, 100))  # order id 0
    before = venue.engine.state_hash()

    events = venue.send(cancel)

    assert [type(e) for e in events] == [Rejected]
    assert events[0].reason == reason and events[0].request == "Cancel"
    assert venue.engine.state_hash() == before


def test_cancel_on_another_symbol_than_the_orders_is_rejected(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL), SymbolParams("XYZ"))
    order = venue.place(buy(5, 100))

    events = venue.send(Cancel(2, "XYZ", "alice", order))

    assert events[0].reason == reasons.UNKNOWN_ORDER
    assert venue.book().bids == ((100, 5, 1),)


def test_cancel_of_a_done_order_named_by_client_order_id_is_rejected_as_not_open(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(buy(5, 100, client_order_id="c-1"))
    venue.send(sell(5, 100, account="bob"))

    events = venue.send(Cancel(3, SYMBOL, "alice", client_order_id="c-1"))

    assert events[0].reason == reasons.ORDER_NOT_OPEN


def test_cancel_of_a_filled_order_is_rejected(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))
    venue.send(sell(5, 100, account="bob"))

    events = venue.send(Cancel(3, SYMBOL, "alice", order))

    assert events[0].reason == reasons.UNKNOWN_ORDER


def test_cancels_are_accepted_while_the_symbol_is_halted(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))
    venue.send(Halt(2, SYMBOL))

    events = venue.send(Cancel(3, SYMBOL, "alice", order))

    assert type(events[0]) is OrderCancelled


def test_cancel_all_cancels_the_accounts_orders_on_that_symbol_only(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL), SymbolParams("XYZ"))
    mine = [venue.place(buy(1, 100)), venue.place(sell(1, 105)), venue.place(buy(2, 99))]
    theirs = venue.place(buy(1, 100, account="bob"))
    elsewhere = venue.place(buy(1, 100, symbol="XYZ"))

    events = venue.send(CancelAll(9, SYMBOL, "alice"))

    cancelled = of_type(events, OrderCancelled)
    assert [c.order_id for c in cancelled] == mine
    assert all(c.reason == reasons.CANCEL_ALL for c in cancelled)
    assert [o.order_id for o in venue.engine.open_orders("bob")] == [theirs]
    assert [o.order_id for o in venue.engine.open_orders("alice")] == [elsewhere]


def test_cancel_all_with_nothing_open_emits_nothing(new_venue: NewVenue) -> None:
    venue = new_venue()

    assert venue.send(CancelAll(1, SYMBOL, "alice")) == []


def test_amend_quantity_down_keeps_time_priority(new_venue: NewVenue) -> None:
    venue = new_venue()
    first = venue.place(buy(10, 100, account="bob"))
    second = venue.place(buy(10, 100, account="carol"))

    events = venue.send(Amend(3, SYMBOL, "bob", first, qty=4))

    assert of_type(events, OrderAmended)[0].priority_kept is True
    assert venue.book().bids == ((100, 14, 2),)
    assert makers(venue.send(sell(5, 100))) == [first, second]


def test_amend_quantity_up_loses_time_priority(new_venue: NewVenue) -> None:
    venue = new_venue()
    first = venue.place(buy(10, 100, account="bob"))
    second = venue.place(buy(10, 100, account="carol"))

    events = venue.send(Amend(3, SYMBOL, "bob", first, qty=12))

    assert of_type(events, OrderAmended)[0].priority_kept is False
    assert venue.book().bids == ((100, 22, 2),)
    assert makers(venue.send(sell(11, 100))) == [second, first]


def test_amend_price_moves_the_order_to_the_back_of_its_new_level(new_venue: NewVenue) -> None:
    venue = new_venue()
    moved = venue.place(buy(5, 99, account="bob"))
    waiting = venue.place(buy(5, 100, account="carol"))

    venue.send(Amend(3, SYMBOL, "bob", moved, price=100))

    assert venue.book().bids == ((100, 10, 2),)
    assert makers(venue.send(sell(6, 100))) == [waiting, moved]


def test_amend_to_a_crossing_price_trades_like_a_new_order(new_venue: NewVenue) -> None:
    venue = new_venue()
    ask = venue.place(sell(3, 101, account="bob"))
    bid = venue.place(buy(5, 100))

    events = venue.send(Amend(3, SYMBOL, "alice", bid, price=101))

    [fill] = of_type(events, Fill)
    assert (fill.taker_order_id, fill.maker_order_id, fill.qty, fill.price) == (bid, ask, 3, 101)
    assert venue.book().bids == ((101, 2, 1),)


def test_amend_quantity_at_or_below_the_filled_quantity_cancels_the_rest(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(10, 100))
    venue.send(sell(6, 100, account="bob"))

    events = venue.send(Amend(3, SYMBOL, "alice", order, qty=5))

    assert [type(e) for e in events] == [OrderCancelled, BookLevel]
    assert (events[0].cancelled_qty, events[0].reason) == (4, reasons.AMENDED_BELOW_FILLED)
    assert venue.book().bids == ()


def test_amend_reports_the_new_total_and_open_quantity(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(10, 100))
    venue.send(sell(4, 100, account="bob"))

    [amended, level] = venue.send(Amend(3, SYMBOL, "alice", order, qty=8))

    assert (amended.qty, amended.leaves, amended.price) == (8, 4, 100)
    assert (level.qty, level.order_count) == (4, 1)


@pytest.mark.fast_engine_only
@pytest.mark.parametrize(
    ("amend", "reason"),
    [
        (Amend(9, SYMBOL, "alice", 999, qty=1), reasons.UNKNOWN_ORDER),
        (Amend(9, SYMBOL, "bob", 0, qty=1), reasons.NOT_ORDER_OWNER),
        (Amend(9, SYMBOL, "alice", 0), reasons.NOTHING_TO_AMEND),
        (Amend(9, SYMBOL, "alice", 0, qty=0), reasons.INVALID_QUANTITY),
        (Amend(9, SYMBOL, "alice", 0, qty=2.5), reasons.INVALID_QUANTITY),  # type: ignore[arg-type]
        (Amend(9, SYMBOL, "alice", 0, qty=1), reasons.QTY_BELOW_MIN),
        (Amend(9, SYMBOL, "alice", 0, qty=51), reasons.QTY_ABOVE_MAX),
        (Amend(9, SYMBOL, "alice", 0, price=0), reasons.INVALID_PRICE),
        (Amend(9, SYMBOL, "alice", 0, price=111), reasons.PRICE_OUT_OF_BAND),
        (Amend(9, SYMBOL, "alice", 1, price=100), reasons.POST_ONLY_WOULD_TAKE),
    ],
)
def test_amend_that_breaks_a_rule_is_rejected_and_changes_nothing(amend: Amend, reason: str) -> None:
    venue = Venue(SymbolParams(SYMBOL, min_qty=2, max_qty=50, band_bps=1000, reference_price=100))
    venue.place(buy(5, 99))  # order id 0
    venue.place(sell(5, 101, post_only=True))  # order id 1
    venue.place(buy(5, 100, account="bob"))
    before = venue.engine.state_hash()

    events = venue.send(amend)

    assert [type(e) for e in events] == [Rejected]
    assert (events[0].reason, events[0].request) == (reason, "Amend")
    assert venue.engine.state_hash() == before


def test_amends_are_rejected_while_the_symbol_is_halted(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))
    venue.send(Halt(2, SYMBOL))

    events = venue.send(Amend(3, SYMBOL, "alice", order, qty=3))

    assert events[0].reason == reasons.SYMBOL_HALTED
