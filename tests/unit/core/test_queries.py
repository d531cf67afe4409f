"""Queries: an order's state, an account's open orders, the L2 book to a depth. They change nothing."""

from __future__ import annotations

import pytest

from matcher.core import (
    BookDepth,
    OpenOrders,
    OrderStatus,
    QueryBook,
    QueryOpenOrders,
    QueryOrder,
    Rejected,
    SymbolParams,
    reasons,
)
from tests.unit.core.venue import SYMBOL, NewVenue, Venue, buy, sell


def test_query_order_answers_the_orders_state(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))
    venue.send(sell(2, 100, account="bob"))

    [state] = venue.send(QueryOrder(3, SYMBOL, "alice", order))

    assert (state.order_id, state.qty, state.filled, state.leaves, state.status) == (
        order,
        5,
        2,
        3,
        OrderStatus.PARTIALLY_FILLED,
    )


def test_query_order_of_another_account_is_refused_but_an_operator_may_ask(new_venue: NewVenue) -> None:
    venue = new_venue()
    order = venue.place(buy(5, 100))

    refused = venue.send(QueryOrder(2, SYMBOL, "bob", order))
    answered = venue.send(QueryOrder(3, SYMBOL, None, order))

    assert type(refused[0]) is Rejected and refused[0].reason == reasons.NOT_ORDER_OWNER
    assert answered[0].order_id == order  # type: ignore[union-attr]


def test_query_of_a_done_order_by_client_order_id_answers_its_final_state(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(buy(5, 100, client_order_id="c"))
    venue.send(sell(5, 100, account="bob"))

    [state] = venue.send(QueryOrder(3, SYMBOL, "alice", client_order_id="c"))

    assert state.status == OrderStatus.FILLED  # type: ignore[union-attr]


def test_query_open_orders_lists_the_accounts_orders_oldest_first(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL), SymbolParams("XYZ"))
    first = venue.place(buy(1, 100))
    second = venue.place(sell(1, 105, symbol="XYZ"))
    venue.place(buy(1, 100, account="bob"))

    [everywhere] = venue.send(QueryOpenOrders(4, "alice"))
    [one_symbol] = venue.send(QueryOpenOrders(5, "alice", "XYZ"))

    assert type(everywhere) is OpenOrders
    assert [o.order_id for o in everywhere.orders] == [first, second]
    assert [o.order_id for o in one_symbol.orders] == [second]  # type: ignore[union-attr]


def test_query_book_answers_levels_best_first_to_the_depth_asked(new_venue: NewVenue) -> None:
    venue = new_venue()
    for price in (97, 99, 98):
        venue.place(buy(1, price))
    venue.place(buy(2, 99, account="bob"))
    venue.place(sell(4, 101))

    [depth] = venue.send(QueryBook(9, SYMBOL, 2))

    assert depth == BookDepth.of(9, SYMBOL, 5, ((99, 3, 2), (98, 1, 1)), ((101, 4, 1),))


def test_query_book_of_an_unknown_symbol_or_a_negative_depth_is_rejected(new_venue: NewVenue) -> None:
    venue = new_venue()

    assert venue.send(QueryBook(1, "NOPE"))[0].reason == reasons.UNKNOWN_SYMBOL  # type: ignore[union-attr]
    assert venue.send(QueryBook(1, SYMBOL, -1))[0].reason == reasons.INVALID_DEPTH  # type: ignore[union-attr]


@pytest.mark.fast_engine_only
def test_queries_change_nothing() -> None:
    venue = Venue()
    order = venue.place(buy(5, 100))
    before = venue.engine.state_hash()

    for query in (QueryOrder(2, SYMBOL, "alice", order), QueryOpenOrders(3, "alice"), QueryBook(4, SYMBOL)):
        venue.send(query)

    assert venue.engine.state_hash() == before
