"""Event identity and market data: ids from (partition, offset), a gapless seq per symbol, one level each."""

from __future__ import annotations

import pytest

from matcher.core import (
    MARKET_DATA,
    BookLevel,
    Cancel,
    Event,
    Fill,
    Side,
    SymbolParams,
    Trade,
    command_id,
)
from tests.unit.core.venue import SYMBOL, NewVenue, buy, of_type, sell


def test_an_orders_id_is_its_partition_and_offset(new_venue: NewVenue) -> None:
    venue = new_venue(partition=3)
    venue.offset = 41

    order_id = venue.place(buy(1, 100))

    assert order_id == command_id(3, 41) == (3 << 48) | 41


def test_market_data_seq_counts_up_by_one_per_symbol(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL), SymbolParams("XYZ"))
    seen: list[Event] = []
    for symbol in (SYMBOL, "XYZ"):
        seen += venue.send(sell(3, 101, symbol=symbol, account="bob"))
        seen += venue.send(sell(3, 102, symbol=symbol, account="bob"))
        seen += venue.send(buy(10, 102, symbol=symbol))
        seen += venue.send(Cancel(9, symbol, "alice", venue.offset - 1))

    for symbol in (SYMBOL, "XYZ"):
        seqs = [e.seq for e in seen if type(e) in MARKET_DATA and e.symbol == symbol]  # type: ignore[union-attr]
        assert seqs == list(range(1, len(seqs) + 1))


def test_a_sweep_emits_fill_and_trade_per_maker_and_one_book_level_per_level(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(1, 101, account="bob"))
    venue.place(sell(1, 101, account="carol"))
    venue.place(sell(5, 102, account="bob"))

    events = venue.send(buy(4, 102))

    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "OrderAccepted",
        "Fill",
        "Trade",
        "Fill",
        "Trade",
        "BookLevel",
        "Fill",
        "Trade",
        "BookLevel",
    ]
    levels = of_type(events, BookLevel)
    assert [(b.side, b.price, b.qty, b.order_count) for b in levels] == [
        (Side.SELL, 101, 0, 0),
        (Side.SELL, 102, 3, 1),
    ]


def test_fill_reports_both_orders_after_the_match(new_venue: NewVenue) -> None:
    venue = new_venue()
    maker = venue.place(sell(5, 101, account="bob", client_order_id="b"))

    events = venue.send(buy(3, 101, ts=9, client_order_id="a"))

    assert of_type(events, Fill) == [
        Fill.of(9, SYMBOL, 101, 3, Side.BUY, events[0].order_id, "alice", "a", 0, maker, "bob", "b", 2)
    ]
    assert of_type(events, Trade) == [Trade.of(SYMBOL, 2, 9, 101, 3, Side.BUY, maker, events[0].order_id)]


def test_every_event_is_stamped_with_the_commands_time(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(sell(5, 101, account="bob", ts=1))

    events = venue.send(buy(3, 101, ts=12345))

    assert {e.ts for e in events} == {12345}  # type: ignore[union-attr]


def test_events_are_immutable_records_with_named_fields() -> None:
    fill = Fill.of(1, SYMBOL, 100, 5, Side.BUY, 2, "a", None, 0, 3, "b", None, 0)

    assert fill.price == 100 and fill._fields[2] == "price"
    assert fill._replace(qty=7).qty == 7 and fill.qty == 5
    assert fill._asdict()["maker_account"] == "b"
    assert repr(fill).startswith("Fill(ts=1, symbol='ABC', price=100, qty=5, aggressor_side=<Side.BUY: 1>")
    assert not hasattr(fill, "__dict__")


def test_a_record_refuses_the_wrong_number_of_values() -> None:
    with pytest.raises(TypeError, match="13 fields"):
        Fill.of(1, SYMBOL)
