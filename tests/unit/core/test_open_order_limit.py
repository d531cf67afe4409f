"""The open-order limit: an account may have at most `max_open_orders` orders resting on a symbol.

Checked before matching, like an exchange's MAX_NUM_ORDERS filter: a GTC limit order (the only
kind that can rest) is rejected with TOO_MANY_OPEN_ORDERS when its account is at the limit,
whether or not it would have rested. Orders that cannot rest, other accounts and other symbols
are not affected; 0 means no limit.
"""

from __future__ import annotations

from matcher.core import (
    AddSymbol,
    Amend,
    Cancel,
    OrderAccepted,
    Rejected,
    SymbolParams,
    TimeInForce,
    reasons,
)
from tests.unit.core.venue import SYMBOL, NewVenue, Venue, buy, sell

LIMIT = 3


def at_the_limit(new_venue: NewVenue, account: str = "alice") -> tuple[Venue, list[int]]:
    """A venue whose symbol allows LIMIT open orders, and `account` with LIMIT buys resting."""
    venue = new_venue(SymbolParams(SYMBOL, max_open_orders=LIMIT))
    return venue, [venue.place(buy(1, 90 + i, account=account)) for i in range(LIMIT)]


def rejection(events: list[object]) -> str | None:
    return events[0].reason if type(events[0]) is Rejected else None  # type: ignore[attr-defined]


def test_a_gtc_limit_order_over_the_accounts_limit_is_rejected(new_venue: NewVenue) -> None:
    venue, _ = at_the_limit(new_venue)

    events = venue.send(buy(1, 95))

    assert rejection(events) == reasons.TOO_MANY_OPEN_ORDERS
    assert len(venue.engine.open_orders("alice")) == LIMIT


def test_the_limit_is_checked_before_matching_so_an_order_that_would_fill_is_rejected_too(
    new_venue: NewVenue,
) -> None:
    venue, _ = at_the_limit(new_venue)
    venue.place(sell(1, 100, account="bob"))

    events = venue.send(buy(1, 100))

    assert rejection(events) == reasons.TOO_MANY_OPEN_ORDERS
    assert venue.book().asks == ((100, 1, 1),)


def test_orders_that_cannot_rest_are_not_limited(new_venue: NewVenue) -> None:
    venue, _ = at_the_limit(new_venue)
    venue.place(sell(3, 100, account="bob"))

    ioc = venue.send(buy(1, 100, time_in_force=TimeInForce.IOC))
    fok = venue.send(buy(1, 100, time_in_force=TimeInForce.FOK))
    market = venue.send(buy(1))

    assert [type(events[0]) for events in (ioc, fok, market)] == [OrderAccepted] * 3


def test_a_cancelled_or_filled_order_frees_its_place(new_venue: NewVenue) -> None:
    venue, (first, _, best) = at_the_limit(new_venue)
    venue.send(Cancel(1, SYMBOL, "alice", first))
    venue.send(sell(1, 92, account="bob"))  # fills `best`

    assert type(venue.send(buy(1, 80))[0]) is OrderAccepted
    assert type(venue.send(buy(1, 81))[0]) is OrderAccepted
    assert rejection(venue.send(buy(1, 82))) == reasons.TOO_MANY_OPEN_ORDERS
    assert best not in [o.order_id for o in venue.engine.open_orders("alice")]


def test_the_limit_counts_per_account_and_per_symbol(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL, max_open_orders=1), SymbolParams("XYZ", max_open_orders=1))
    venue.place(buy(1, 90))

    assert type(venue.send(buy(1, 90, account="bob"))[0]) is OrderAccepted
    assert type(venue.send(buy(1, 90, symbol="XYZ"))[0]) is OrderAccepted


def test_an_amend_of_an_order_at_the_limit_is_not_limited(new_venue: NewVenue) -> None:
    venue, (first, _, _) = at_the_limit(new_venue)

    events = venue.send(Amend(1, SYMBOL, "alice", first, qty=5, price=85))

    assert rejection(events) is None
    assert len(venue.engine.open_orders("alice")) == LIMIT


def test_no_limit_is_the_core_default(new_venue: NewVenue) -> None:
    venue = new_venue()

    placed = [venue.send(buy(1, 90))[0] for _ in range(500)]

    assert {type(event) for event in placed} == {OrderAccepted}


def test_a_symbol_added_at_run_time_keeps_its_limit(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.send(AddSymbol(1, SymbolParams("NEW", max_open_orders=1)))
    venue.place(buy(1, 90, symbol="NEW"))

    assert rejection(venue.send(buy(1, 90, symbol="NEW"))) == reasons.TOO_MANY_OPEN_ORDERS


def test_a_negative_limit_is_invalid_symbol_params(new_venue: NewVenue) -> None:
    venue = new_venue()

    events = venue.send(AddSymbol(1, SymbolParams("NEW", max_open_orders=-1)))

    assert rejection(events) == reasons.INVALID_SYMBOL_PARAMS
