"""From a request's decimal strings and path ids to the core's integers, refusing what is not exact."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.commands import ORDER_ID_OFFSET_BITS, Gateway, price_ticks, quantity_lots
from gateway.errors import ApiError
from runtime.live_symbols import LiveRegistry
from runtime.symbols import Symbol, SymbolRegistry

# order_symbol reads only the registry; the other parts of the gateway are never touched.
UNUSED: Any = None


def _gateway(registry: SymbolRegistry) -> Gateway:
    return Gateway(
        settings=UNUSED,
        registry=LiveRegistry(registry),
        auth=UNUSED,
        sequencer=UNUSED,
        metrics=UNUSED,
        health=UNUSED,
    )


def _price_refusal(symbol: Symbol, text: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        price_ticks(symbol, text)
    return caught.value


def _quantity_refusal(symbol: Symbol, text: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        quantity_lots(symbol, text)
    return caught.value


def _order_refusal(gateway: Gateway, order_id: str, symbol: str = "BTC-USD") -> ApiError:
    with pytest.raises(ApiError) as caught:
        gateway.order_symbol(order_id, symbol)
    return caught.value


# --- prices and quantities -----------------------------------------------------------------------


def test_a_price_on_the_tick_is_a_whole_number_of_ticks(btc: Symbol) -> None:
    assert price_ticks(btc, "65000.01") == 6_500_001


def test_a_quantity_on_the_lot_is_a_whole_number_of_lots(btc: Symbol) -> None:
    assert quantity_lots(btc, "0.5") == 50_000


def test_a_price_off_the_tick_is_422_off_tick_naming_the_tick_size(btc: Symbol) -> None:
    error = _price_refusal(btc, "65000.001")

    assert (error.status, error.code) == (422, "OFF_TICK")
    assert error.message == "price 65000.001 is not a multiple of the tick size 0.01"


def test_a_quantity_off_the_lot_is_422_off_lot_naming_the_lot_size(btc: Symbol) -> None:
    error = _quantity_refusal(btc, "0.000001")

    assert (error.status, error.code) == (422, "OFF_LOT")
    assert error.message == "quantity 0.000001 is not a multiple of the lot size 0.00001"


def test_a_price_of_eighteen_significant_digits_is_converted_exactly(btc: Symbol) -> None:
    assert price_ticks(btc, "1234567890123456.78") == 123_456_789_012_345_678


@pytest.mark.parametrize("text", ["1234567890123456789", "1.234567890123456789", "-1234567890123456789"])
def test_a_price_of_more_than_eighteen_significant_digits_is_422_too_many_digits(
    btc: Symbol, text: str
) -> None:
    error = _price_refusal(btc, text)

    assert (error.status, error.code) == (422, "TOO_MANY_DIGITS")
    assert error.message == "price has more than 18 significant digits"


def test_a_quantity_of_more_than_eighteen_significant_digits_is_422_too_many_digits(btc: Symbol) -> None:
    error = _quantity_refusal(btc, "0.0000001234567890123456789")

    assert (error.status, error.code) == (422, "TOO_MANY_DIGITS")
    assert error.message == "quantity has more than 18 significant digits"


@pytest.mark.parametrize("text", ["0", "0.00", "-1", "-65000.00"])
def test_a_price_that_is_not_positive_is_422_not_positive(btc: Symbol, text: str) -> None:
    error = _price_refusal(btc, text)

    assert (error.status, error.code) == (422, "NOT_POSITIVE")


@pytest.mark.parametrize("text", ["0", "-0.5"])
def test_a_quantity_that_is_not_positive_is_422_not_positive(btc: Symbol, text: str) -> None:
    error = _quantity_refusal(btc, text)

    assert (error.status, error.code) == (422, "NOT_POSITIVE")


@pytest.mark.parametrize("text", ["6.5e4", "6.5E4", "1e-2"])
def test_a_price_in_exponent_notation_is_422_malformed_decimal(btc: Symbol, text: str) -> None:
    error = _price_refusal(btc, text)

    assert (error.status, error.code) == (422, "MALFORMED_DECIMAL")
    assert "has an exponent" in error.message


def test_a_quantity_in_exponent_notation_is_422_malformed_decimal(btc: Symbol) -> None:
    error = _quantity_refusal(btc, "5e-1")

    assert (error.status, error.code) == (422, "MALFORMED_DECIMAL")


# --- order ids -----------------------------------------------------------------------------------


def test_an_order_id_of_the_symbols_partition_gives_its_number_and_symbol(registry: SymbolRegistry) -> None:
    order_id = (1 << ORDER_ID_OFFSET_BITS) | 77  # partition 1: ETH-USD's

    number, symbol = _gateway(registry).order_symbol(str(order_id), "ETH-USD")

    assert (number, symbol) == (order_id, registry["ETH-USD"])


@pytest.mark.parametrize("order_id", ["abc", "", "-1", "+1", "1.0", "12a", " 12", "0x10"])
def test_a_non_numeric_order_id_is_404_unknown_order(registry: SymbolRegistry, order_id: str) -> None:
    error = _order_refusal(_gateway(registry), order_id)

    assert (error.status, error.code) == (404, "UNKNOWN_ORDER")


def test_an_order_id_with_a_non_ascii_digit_is_404_unknown_order(registry: SymbolRegistry) -> None:
    # The path is percent-decoded UTF-8: /orders/1%C2%B2 arrives as "1²", which str.isdigit() accepts.
    error = _order_refusal(_gateway(registry), "1\N{SUPERSCRIPT TWO}")

    assert (error.status, error.code) == (404, "UNKNOWN_ORDER")


def test_an_order_id_beyond_a_signed_64_bit_number_is_404_unknown_order(registry: SymbolRegistry) -> None:
    error = _order_refusal(_gateway(registry), str(2**63))

    assert (error.status, error.code) == (404, "UNKNOWN_ORDER")


def test_an_order_id_of_another_partition_is_404_unknown_order(registry: SymbolRegistry) -> None:
    of_partition_1 = (1 << ORDER_ID_OFFSET_BITS) | 77  # BTC-USD is matched on partition 0

    error = _order_refusal(_gateway(registry), str(of_partition_1), "BTC-USD")

    assert (error.status, error.code) == (404, "UNKNOWN_ORDER")


def test_an_order_id_is_refused_exactly_like_another_accounts_order(registry: SymbolRegistry) -> None:
    error = _order_refusal(_gateway(registry), "abc")

    assert error.message == "no such order among this account's orders"


def test_an_order_of_an_unknown_symbol_is_404_unknown_symbol(registry: SymbolRegistry) -> None:
    error = _order_refusal(_gateway(registry), "77", "ADA-USD")

    assert (error.status, error.code) == (404, "UNKNOWN_SYMBOL")
