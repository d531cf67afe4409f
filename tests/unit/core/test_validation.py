"""Validation against the registry, halts, symbols added at run time: rejections are results, not errors."""

from __future__ import annotations

from typing import Any

import pytest

from matcher.core import (
    AddSymbol,
    Halt,
    MatchingEngine,
    OrderAccepted,
    OrderType,
    Rejected,
    Resume,
    SelfTradePrevention,
    Side,
    SymbolAdded,
    SymbolParams,
    TimeInForce,
    TradingStatus,
    reasons,
)
from tests.unit.core.venue import SYMBOL, NewVenue, Venue, buy, sell

REGISTRY = SymbolParams(SYMBOL, min_qty=2, max_qty=100, band_bps=1000, reference_price=200)  # 180..220


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"symbol": "NOPE"}, reasons.UNKNOWN_SYMBOL),
        ({"side": 1}, reasons.INVALID_SIDE),  # a plain int is not a Side
        ({"order_type": 3}, reasons.INVALID_ORDER_TYPE),
        ({"time_in_force": 9}, reasons.INVALID_TIME_IN_FORCE),
        ({"stp": 7}, reasons.INVALID_STP_MODE),
        ({"qty": 0}, reasons.INVALID_QUANTITY),
        ({"qty": -3}, reasons.INVALID_QUANTITY),
        ({"qty": 5.0}, reasons.INVALID_QUANTITY),
        ({"qty": True}, reasons.INVALID_QUANTITY),
        ({"qty": 1}, reasons.QTY_BELOW_MIN),
        ({"qty": 101}, reasons.QTY_ABOVE_MAX),
        ({"price": 0}, reasons.INVALID_PRICE),
        ({"price": -200}, reasons.INVALID_PRICE),
        ({"price": 200.5}, reasons.INVALID_PRICE),
        ({"price": None}, reasons.INVALID_PRICE),  # a limit order needs a price
        ({"order_type": OrderType.MARKET}, reasons.INVALID_PRICE),  # a market order must have none
        ({"post_only": True, "time_in_force": TimeInForce.IOC}, reasons.INVALID_POST_ONLY),
        ({"price": 179}, reasons.PRICE_OUT_OF_BAND),
        ({"price": 221}, reasons.PRICE_OUT_OF_BAND),
    ],
)
def test_new_order_that_breaks_a_rule_is_rejected_with_its_reason(
    new_venue: NewVenue, changes: dict[str, Any], reason: str
) -> None:
    venue = new_venue(REGISTRY)
    order = buy(10, 200)._replace(**changes)

    events = venue.send(order)

    assert [type(e) for e in events] == [Rejected]
    assert (events[0].reason, events[0].request, events[0].order_id) == (reason, "NewOrder", 0)
    assert venue.engine.resting_count() == 0


def test_the_first_broken_rule_names_the_rejection(new_venue: NewVenue) -> None:
    venue = new_venue(REGISTRY)

    events = venue.send(buy(0, 0, time_in_force=9))  # tif, quantity and price are all wrong

    assert events[0].reason == reasons.INVALID_TIME_IN_FORCE


def test_prices_at_the_band_edges_are_accepted(new_venue: NewVenue) -> None:
    venue = new_venue(REGISTRY)

    assert type(venue.send(buy(10, 180))[0]) is OrderAccepted
    assert type(venue.send(sell(10, 220))[0]) is OrderAccepted


def test_the_band_follows_the_last_trade_price(new_venue: NewVenue) -> None:
    venue = new_venue(REGISTRY)
    venue.place(sell(2, 215, account="bob"))
    venue.place(buy(2, 215))  # trades at 215: the band becomes 194..236

    assert venue.send(buy(2, 190))[0].reason == reasons.PRICE_OUT_OF_BAND
    assert type(venue.send(sell(2, 230))[0]) is OrderAccepted


def test_a_symbol_without_band_accepts_any_positive_price(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL, band_bps=0, reference_price=200))

    assert type(venue.send(buy(1, 1))[0]) is OrderAccepted
    assert type(venue.send(sell(1, 10**12))[0]) is OrderAccepted


def test_a_halted_symbol_rejects_new_orders(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.send(Halt(1, SYMBOL))

    events = venue.send(buy(1, 100))

    assert events[0].reason == reasons.SYMBOL_HALTED


def test_halt_and_resume_are_market_data_with_the_next_seq(new_venue: NewVenue) -> None:
    venue = new_venue()
    venue.place(buy(1, 100))  # seq 1: its BookLevel

    halted = venue.send(Halt(7, SYMBOL))
    resumed = venue.send(Resume(8, SYMBOL))

    assert halted == [TradingStatus.of(SYMBOL, 2, 7, True)]
    assert resumed == [TradingStatus.of(SYMBOL, 3, 8, False)]
    assert type(venue.send(buy(1, 100))[0]) is OrderAccepted


@pytest.mark.parametrize(
    ("commands", "reason"),
    [
        ([Halt(1, SYMBOL), Halt(2, SYMBOL)], reasons.SYMBOL_ALREADY_HALTED),
        ([Resume(1, SYMBOL)], reasons.SYMBOL_NOT_HALTED),
        ([Halt(1, "NOPE")], reasons.UNKNOWN_SYMBOL),
    ],
)
def test_halt_or_resume_that_changes_nothing_is_rejected(
    new_venue: NewVenue, commands: list[Halt | Resume], reason: str
) -> None:
    venue = new_venue()

    events = [venue.send(c) for c in commands][-1]

    assert events[0].reason == reason


def test_a_symbol_listed_as_halted_starts_halted(new_venue: NewVenue) -> None:
    venue = new_venue(SymbolParams(SYMBOL, halted=True))

    assert venue.send(buy(1, 100))[0].reason == reasons.SYMBOL_HALTED


@pytest.mark.fast_engine_only
def test_symbols_can_be_added_at_run_time() -> None:
    venue = Venue()
    params = SymbolParams("NEW", min_qty=5)

    events = venue.send(AddSymbol(1, params))

    assert events == [SymbolAdded.of(1, params)]
    assert venue.send(buy(4, 100, symbol="NEW"))[0].reason == reasons.QTY_BELOW_MIN
    assert type(venue.send(buy(5, 100, symbol="NEW"))[0]) is OrderAccepted
    assert [p.symbol for p in venue.engine.symbols()] == [SYMBOL, "NEW"]


@pytest.mark.fast_engine_only
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (SymbolParams(SYMBOL), reasons.SYMBOL_EXISTS),
        (SymbolParams("NEW", min_qty=0), reasons.INVALID_SYMBOL_PARAMS),
        (SymbolParams("NEW", min_qty=5, max_qty=4), reasons.INVALID_SYMBOL_PARAMS),
        (SymbolParams("NEW", band_bps=-1), reasons.INVALID_SYMBOL_PARAMS),
        (SymbolParams("NEW", reference_price=0), reasons.INVALID_SYMBOL_PARAMS),
        (SymbolParams(""), reasons.INVALID_SYMBOL_PARAMS),
    ],
)
def test_adding_a_symbol_that_exists_or_has_bad_parameters_is_rejected(
    params: SymbolParams, reason: str
) -> None:
    venue = Venue()

    events = venue.send(AddSymbol(1, params))

    assert events[0].reason == reason
    assert [p.symbol for p in venue.engine.symbols()] == [SYMBOL]


@pytest.mark.fast_engine_only
def test_an_engine_refuses_a_bad_registry_at_construction() -> None:
    with pytest.raises(ValueError, match="min_qty"):
        MatchingEngine(0, [SymbolParams(SYMBOL, min_qty=0)])
    with pytest.raises(ValueError, match="twice"):
        MatchingEngine(0, [SymbolParams(SYMBOL), SymbolParams(SYMBOL)])
    with pytest.raises(ValueError, match="partition"):
        MatchingEngine(-1)


def test_enum_fields_accept_their_members(new_venue: NewVenue) -> None:
    venue = new_venue()

    for side in Side:
        for stp in SelfTradePrevention:
            order = buy(1, 100, stp=stp)._replace(side=side, account=f"{side.name}-{stp.name}")
            assert type(venue.send(order)[0]) is OrderAccepted
