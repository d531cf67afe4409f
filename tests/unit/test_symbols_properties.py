"""Properties of the exact conversions: round trips hold for every step size, nothing is ever rounded."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runtime.symbols import (
    MAX_UNITS,
    DomainError,
    Symbol,
    SymbolStatus,
    lots_to_qty,
    parse_symbol,
    price_to_ticks,
    ticks_to_price,
)

# Step sizes such as 0.01, 0.005, 0.00001, 1, 5, 2.5, 500: a coefficient times a power of ten.
steps = st.builds(
    lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
    st.integers(1, 999),
    st.integers(-9, 2),
)
units = st.integers(1, 10**15)
decimals = st.integers(0, 8)
wholes = st.integers(0, 10**10)  # at 8 decimals, 10**18 ticks: still a long


def _canonical_text(whole: int, fraction: int, places: int) -> str:
    """A decimal string with exactly ``places`` decimals, written without the code under test."""
    return f"{whole}.{fraction:0{places}d}" if places else str(whole)


@settings(deadline=None)
@given(ticks=st.integers(1, MAX_UNITS), tick_size=steps)
def test_ticks_to_text_and_back_is_the_identity(ticks: int, tick_size: Decimal) -> None:
    assert price_to_ticks(ticks_to_price(ticks, tick_size), tick_size) == ticks


@settings(deadline=None)
@given(count=st.integers(-(10**15), 10**15), step=steps)
def test_the_text_of_a_count_has_the_steps_decimals_and_its_exact_value(count: int, step: Decimal) -> None:
    places = max(0, -int(step.normalize().as_tuple().exponent))
    with localcontext(prec=100):
        expected = f"{(count * step).quantize(Decimal(1).scaleb(-places)):f}"
    assert lots_to_qty(count, step) == ticks_to_price(count, step) == expected


@settings(deadline=None)
@given(lots=units, lot_size=steps)
def test_the_text_of_a_quantity_is_exactly_lots_times_lot_size(lots: int, lot_size: Decimal) -> None:
    with localcontext(prec=100):
        assert Decimal(lots_to_qty(lots, lot_size)) == lots * lot_size


@settings(deadline=None)
@given(whole=wholes, fraction=st.integers(0, 10**8 - 1), places=decimals)
def test_canonical_text_to_ticks_and_back_is_the_identity(whole: int, fraction: int, places: int) -> None:
    fraction %= 10**places
    text = _canonical_text(whole, fraction, places)
    tick_size = Decimal(1).scaleb(-places)
    assume(Decimal(text) != 0)  # zero is not a price

    assert ticks_to_price(price_to_ticks(text, tick_size), tick_size) == text


@settings(deadline=None)
@given(whole=wholes.filter(bool), places=decimals, extra_zeros=st.integers(1, 5))
def test_trailing_zeros_convert_to_the_same_ticks(whole: int, places: int, extra_zeros: int) -> None:
    tick_size = Decimal(1).scaleb(-places)
    text = _canonical_text(whole, 0, places)
    padded = text + ("" if places else ".") + "0" * extra_zeros

    assert price_to_ticks(padded, tick_size) == price_to_ticks(text, tick_size)


@settings(deadline=None)
@given(whole=wholes, fraction=st.integers(0, 10**8 - 1), places=decimals, last=st.integers(1, 9))
def test_one_more_decimal_than_the_tick_is_always_off_tick(
    whole: int, fraction: int, places: int, last: int
) -> None:
    fraction %= 10**places
    text = _canonical_text(whole, fraction, places) + ("" if places else ".") + str(last)

    try:
        price_to_ticks(text, Decimal(1).scaleb(-places))
    except DomainError as error:
        assert error.reason == "OFF_TICK"
    else:
        raise AssertionError(f"{text} was accepted at {places} decimals")


@settings(deadline=None)
@given(
    text=st.one_of(st.text(max_size=45), st.from_regex(r"-?[0-9]{0,25}(\.[0-9]{0,20})?([eE][-+]?[0-9]+)?"))
)
def test_any_text_converts_or_raises_a_domain_error(text: str) -> None:
    try:
        ticks = price_to_ticks(text, Decimal("0.01"))
    except DomainError as error:
        assert error.reason in {"MALFORMED_DECIMAL", "NOT_POSITIVE", "OFF_TICK", "OUT_OF_RANGE"}
        assert "\n" not in str(error)
    else:
        assert 1 <= ticks <= MAX_UNITS


@st.composite
def symbols(draw: st.DrawFn) -> Symbol:
    min_qty_lots = draw(units)
    return Symbol(
        name=draw(st.from_regex(r"[A-Z0-9]{1,8}(-[A-Z0-9]{1,8})?", fullmatch=True)),
        partition=draw(st.integers(0, 7)),
        tick_size=draw(steps),
        lot_size=draw(steps),
        min_qty_lots=min_qty_lots,
        max_qty_lots=draw(st.integers(min_qty_lots, 10**15)),
        reference_price_ticks=draw(units),
        band_bps=draw(st.integers(1, 10_000)),
        status=draw(st.sampled_from(SymbolStatus)),
    )


@settings(deadline=None)
@given(symbol=symbols())
def test_a_symbols_registry_entry_parses_back_to_the_symbol(symbol: Symbol) -> None:
    assert parse_symbol(symbol.name, symbol.to_params(), 8) == symbol
