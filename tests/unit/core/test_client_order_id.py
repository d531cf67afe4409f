"""client_order_id idempotency: a repeated id answers with the first order's state and creates nothing."""

from __future__ import annotations

import pytest

from matcher.core import Cancel, OrderState, OrderStatus, OrderType, Side, reasons
from tests.unit.core.venue import NewVenue, Venue, buy, sell


@pytest.mark.fast_engine_only
def test_a_repeated_client_order_id_returns_the_original_orders_state_and_creates_nothing() -> None:
    venue = Venue()
    original = venue.place(buy(5, 100, client_order_id="c-1"))
    before = venue.engine.state_hash()

    events = venue.send(buy(9, 101, client_order_id="c-1"))

    assert events == [
        OrderState.of(
            1, "ABC", original, "alice", "c-1", Side.BUY, OrderType.LIMIT, 100, 5, 0, 5, OrderStatus.NEW
        )
    ]
    assert venue.engine.state_hash() == before


def test_a_repeated_client_order_id_of_a_done_order_returns_its_final_state(new_venue: NewVenue) -> None:
    venue = new_venue()
    original = venue.place(buy(5, 100, client_order_id="c-1"))
    venue.send(sell(5, 100, account="bob"))

    [state] = venue.send(buy(5, 100, client_order_id="c-1"))

    assert (state.order_id, state.status, state.filled, state.leaves) == (original, OrderStatus.FILLED, 5, 0)
    assert venue.book().bids == ()


def test_a_repeated_client_order_id_of_a_rejected_order_returns_the_rejection(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.send(buy(0, 100, client_order_id="c-1"))

    [state] = venue.send(buy(5, 100, client_order_id="c-1"))

    assert (state.order_id, state.status) == (0, OrderStatus.REJECTED)


def test_client_order_ids_are_per_account(new_venue: NewVenue) -> None:
    venue = new_venue()
    first = venue.place(buy(5, 100, client_order_id="same"))

    second = venue.place(buy(5, 100, account="bob", client_order_id="same"))

    assert first != second
    assert venue.book().bids == ((100, 10, 2),)


def test_an_order_can_be_looked_up_by_client_order_id_while_open_and_once_done(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100, client_order_id="c-1"))
    open_state = venue.engine.order_by_client_id("alice", "c-1")
    venue.send(sell(2, 100, account="bob"))
    venue.send(Cancel(3, "ABC", "alice", order))

    done_state = venue.engine.order_by_client_id("alice", "c-1")

    assert open_state is not None and open_state.status == OrderStatus.NEW
    assert done_state is not None and (done_state.status, done_state.filled) == (OrderStatus.CANCELLED, 2)
    assert venue.engine.order_by_client_id("alice", "never") is None


def test_a_cancel_by_a_client_order_id_never_used_is_rejected_as_unknown(new_venue: NewVenue) -> None:
    venue = new_venue()

    events = venue.send(Cancel(1, "ABC", "alice", client_order_id="nope"))

    assert events[0].reason == reasons.UNKNOWN_ORDER


def test_a_done_orders_client_order_id_is_remembered_for_the_memory_then_free_again(
    new_venue: NewVenue,
) -> None:
    venue = new_venue(client_id_memory=10)
    original = venue.place(buy(5, 100, client_order_id="c-1"))
    venue.send(Cancel(2, "ABC", "alice", original))  # done at offset 1
    venue.offset = 10  # the last command that still remembers it

    [retry] = venue.send(buy(5, 100, client_order_id="c-1"))
    again = venue.place(buy(7, 101, client_order_id="c-1"))  # offset 11 forgets it first

    assert (retry.order_id, retry.status) == (original, OrderStatus.CANCELLED)
    assert again != original
    assert venue.engine.order_by_client_id("alice", "c-1").qty == 7  # type: ignore[union-attr]


def test_a_rejected_orders_client_order_id_is_forgotten_like_a_done_orders(new_venue: NewVenue) -> None:
    venue = new_venue(client_id_memory=3)
    venue.send(buy(0, 100, client_order_id="c-1"))  # rejected at offset 0
    venue.offset = 3

    venue.place(buy(5, 100, client_order_id="c-1"))

    assert venue.engine.order_by_client_id("alice", "c-1").status == OrderStatus.NEW  # type: ignore[union-attr]


def test_an_open_order_is_never_forgotten_however_old(new_venue: NewVenue) -> None:
    venue = new_venue(client_id_memory=3)
    order = venue.place(buy(5, 100, client_order_id="c-1"))
    venue.offset = 1_000

    [state] = venue.send(buy(5, 100, client_order_id="c-1"))

    assert (state.order_id, state.status) == (order, OrderStatus.NEW)
