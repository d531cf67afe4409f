"""The symbol registry: loading and validating the file, and exact decimal <-> ticks/lots conversion."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.errors import UserError
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import (
    DEFAULT_MAX_OPEN_ORDERS,
    DomainError,
    Symbol,
    SymbolRegistry,
    SymbolStatus,
    load_registry,
    lots_to_qty,
    parse_symbol,
    price_to_ticks,
    qty_to_lots,
    ticks_to_price,
)
from schemas import decode, encode
from tests.unit.listings import btc_params


def _btc() -> dict[str, Any]:
    return btc_params()


def _aapl() -> dict[str, Any]:
    return {
        **_btc(),
        "partition": 1,
        "lot_size": "1",
        "min_qty": "1",
        "max_qty": "100000",
        "reference_price": "190",
    }


def _document() -> dict[str, Any]:
    return {"partition_count": 2, "symbols": {"BTC-USD": _btc(), "AAPL": _aapl()}}


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "symbols.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_registry(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _symbol_error(tmp_path: Path, **changes: Any) -> str:
    """The error for the valid document with BTC-USD's fields changed (a value of None removes the field)."""
    document = _document()
    btc = document["symbols"]["BTC-USD"]
    btc.update(changes)
    document["symbols"]["BTC-USD"] = {key: value for key, value in btc.items() if value is not None}
    return _load_error(_write(tmp_path, document))


# --- the registry ------------------------------------------------------------------------------


def test_a_symbol_gets_integer_parameters_for_the_core(tmp_path: Path) -> None:
    btc = load_registry(_write(tmp_path, _document()))["BTC-USD"]

    assert btc == Symbol(
        name="BTC-USD",
        partition=0,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.00001"),
        min_qty_lots=10,
        max_qty_lots=10_000_000,
        reference_price_ticks=6_500_000,
        band_bps=1_000,
        status=SymbolStatus.TRADING,
        max_open_orders=200,
    )


def test_a_zero_band_means_no_band_and_stays_zero_in_the_file_form(tmp_path: Path) -> None:
    document = _document()
    document["symbols"]["BTC-USD"]["band_percent"] = "0"

    btc = load_registry(_write(tmp_path, document))["BTC-USD"]

    assert btc.band_bps == 0
    assert btc.to_params()["band_percent"] == "0"


def test_an_entry_without_an_open_order_limit_gets_the_default_bound(tmp_path: Path) -> None:
    btc = load_registry(_write(tmp_path, _document()))["BTC-USD"]

    assert btc.max_open_orders == DEFAULT_MAX_OPEN_ORDERS == 200
    assert btc.to_params()["max_open_orders"] == 200


def test_an_open_order_limit_of_zero_means_no_limit_and_stays_zero(tmp_path: Path) -> None:
    document = _document()
    document["symbols"]["BTC-USD"]["max_open_orders"] = 0

    btc = load_registry(_write(tmp_path, document))["BTC-USD"]

    assert btc.max_open_orders == 0
    assert btc.to_params()["max_open_orders"] == 0


def test_the_registry_knows_its_partition_count(tmp_path: Path) -> None:
    assert load_registry(_write(tmp_path, _document())).partition_count == 2


def test_lookup_of_an_unknown_symbol_finds_nothing(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, _document()))

    assert registry.get("ETH-USD") is None
    assert "ETH-USD" not in registry
    assert "AAPL" in registry


def test_symbols_of_a_partition_keep_registry_order(tmp_path: Path) -> None:
    document = _document()
    document["symbols"]["ETH-USD"] = _btc()
    registry = load_registry(_write(tmp_path, document))

    assert [symbol.name for symbol in registry.symbols_of_partition(0)] == ["BTC-USD", "ETH-USD"]
    assert [symbol.name for symbol in registry.symbols_of_partition(1)] == ["AAPL"]
    assert [symbol.name for symbol in registry] == ["BTC-USD", "AAPL", "ETH-USD"]
    assert len(registry) == 3


def test_a_halted_symbol_is_loaded_as_halted(tmp_path: Path) -> None:
    document = _document()
    document["symbols"]["AAPL"]["status"] = "halted"

    assert load_registry(_write(tmp_path, document))["AAPL"].status is SymbolStatus.HALTED


def test_the_default_registry_spreads_a_handful_of_symbols_over_four_partitions() -> None:
    registry = load_registry(DEFAULT_SYMBOLS_FILE)

    assert registry.partition_count == 4
    assert all(registry.symbols_of_partition(partition) for partition in range(4))
    assert {"BTC-USD", "ETH-USD", "AAPL"} <= {symbol.name for symbol in registry}


def test_the_default_registry_prices_btc_in_cents() -> None:
    btc = load_registry(DEFAULT_SYMBOLS_FILE)["BTC-USD"]

    assert btc.price_to_ticks("65000.01") == 6_500_001


def test_a_registry_cannot_hold_a_symbol_twice() -> None:
    btc = parse_symbol("BTC-USD", _btc(), 2)

    with pytest.raises(DomainError, match="duplicate symbol 'BTC-USD'"):
        SymbolRegistry(2, [btc, btc])


# --- what the loader refuses, each in one line naming the file and the problem -------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nope.yaml") == f"symbol registry {tmp_path / 'nope.yaml'} not found"


def test_malformed_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "symbols.yaml"
    path.write_text("partition_count: 2\nsymbols: [BTC-USD\n", encoding="utf-8")

    message = _load_error(path)

    assert message.startswith(f"{path}: malformed YAML: line 3 column 1:")


def test_a_symbol_listed_twice_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(_document(), sort_keys=False)
    path = tmp_path / "symbols.yaml"
    path.write_text(text + "  AAPL:\n    partition: 0\n", encoding="utf-8")

    assert "duplicate key 'AAPL'" in _load_error(path)


def test_a_field_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "symbols.yaml"
    path.write_text("partition_count: 2\npartition_count: 3\nsymbols: {}\n", encoding="utf-8")

    assert "duplicate key 'partition_count'" in _load_error(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (["BTC-USD"], "expected a mapping with 'partition_count' and 'symbols'"),
        ({"symbols": {"BTC-USD": _btc()}}, "missing field 'partition_count'"),
        ({"partition_count": 2, "symbols": {}}, "'symbols' must map each symbol name to its parameters"),
        ({**_document(), "partitions": 4}, "unknown field 'partitions' (expected: partition_count, symbols)"),
        ({**_document(), "partition_count": 0}, "partition_count must be a whole number in 1..32768, got 0"),
        (
            {**_document(), "partition_count": "4"},
            "partition_count must be a whole number in 1..32768, got '4'",
        ),
        (
            {**_document(), "partition_count": True},
            "partition_count must be a whole number in 1..32768, got True",
        ),
        (
            {**_document(), "partition_count": 40_000},
            "partition_count must be a whole number in 1..32768, got 40000",
        ),
    ],
)
def test_a_malformed_registry_is_refused(tmp_path: Path, document: Any, message: str) -> None:
    path = _write(tmp_path, document)

    assert _load_error(path) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"partition": 2}, "partition 2 is outside 0..1 (there are 2)"),
        ({"partition": -1}, "partition -1 is outside 0..1"),
        ({"partition": "0"}, "partition must be a whole number, got '0'"),
        ({"tick_size": "0"}, "tick_size must be positive, got '0'"),
        ({"tick_size": "-0.01"}, "tick_size must be positive, got '-0.01'"),
        ({"tick_size": 0.01}, "tick_size must be a decimal string such as '12.5', got 0.01 (float)"),
        ({"lot_size": "abc"}, "lot_size 'abc' is not a plain decimal number"),
        ({"min_qty": "0.000015"}, "min_qty: qty 0.000015 is not a multiple of the lot size 0.00001"),
        ({"max_qty": "0"}, "max_qty: qty must be positive"),
        ({"min_qty": "200"}, "min_qty 200 is above max_qty 100"),
        (
            {"reference_price": "65000.001"},
            "reference_price: price 65000.001 is not a multiple of the tick size",
        ),
        ({"band_percent": "-1"}, "band_percent must be positive"),
        ({"band_percent": "100.01"}, "band_percent 100.01 is above 100"),
        ({"band_percent": "10.005"}, "band_percent 10.005 is not a multiple of the basis point 0.01"),
        ({"status": "open"}, "status must be 'trading' or 'halted', got 'open'"),
        ({"lot_size": None}, "missing field 'lot_size'"),
        ({"tick": "0.01"}, "unknown field 'tick'"),
        (
            {"max_open_orders": -1},
            "max_open_orders must be a whole number in 0..100000 (0: no limit), got -1",
        ),
        ({"max_open_orders": 100_001}, "max_open_orders must be a whole number in 0..100000"),
        ({"max_open_orders": "200"}, "max_open_orders must be a whole number in 0..100000"),
        ({"max_open_orders": True}, "max_open_orders must be a whole number in 0..100000"),
    ],
)
def test_a_bad_symbol_parameter_is_named_with_its_symbol(tmp_path: Path, changes: Any, message: str) -> None:
    error = _symbol_error(tmp_path, **changes)

    assert f": symbol 'BTC-USD': {message}" in error


@pytest.mark.parametrize("name", ["btc-usd", "BTC USD", "BTC/USD", "-BTC", "", "A" * 33])
def test_a_symbol_name_must_be_capitals_digits_and_separators(tmp_path: Path, name: str) -> None:
    document = _document()
    document["symbols"][name] = _btc()

    assert f"symbol name {name!r} must be up to 32 capital letters" in _load_error(_write(tmp_path, document))


# --- exact conversion ----------------------------------------------------------------------------


def _refusal(convert: Callable[[object, Decimal], int], text: object, step: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        convert(text, Decimal(step))
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("text", "tick_size", "ticks"),
    [
        ("65000.01", "0.01", 6_500_001),
        ("65000.10", "0.01", 6_500_010),
        ("65000.1", "0.01", 6_500_010),
        ("0.01", "0.01", 1),
        ("100.5", "0.5", 201),
        ("105", "5", 21),
        ("0.00001", "0.00001", 1),
        ("9223372036854775807", "1", 2**63 - 1),
    ],
)
def test_a_price_on_the_tick_converts_exactly(text: str, tick_size: str, ticks: int) -> None:
    assert price_to_ticks(text, Decimal(tick_size)) == ticks


@pytest.mark.parametrize(("text", "tick_size"), [("65000.015", "0.01"), ("100.25", "0.5"), ("107", "5")])
def test_a_price_off_the_tick_is_refused_not_rounded(text: str, tick_size: str) -> None:
    error = _refusal(price_to_ticks, text, tick_size)

    assert (error.reason, str(error)) == (
        "OFF_TICK",
        f"price {text} is not a multiple of the tick size {tick_size}",
    )


def test_a_quantity_off_the_lot_is_refused_not_rounded() -> None:
    error = _refusal(qty_to_lots, "1.5", "1")

    assert (error.reason, str(error)) == ("OFF_LOT", "qty 1.5 is not a multiple of the lot size 1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "price 'abc' is not a plain decimal number such as '12.5'"),
        ("", "price '' is not a plain decimal number such as '12.5'"),
        (" 1", "price ' 1' is not a plain decimal number such as '12.5'"),
        ("1 ", "price '1 ' is not a plain decimal number such as '12.5'"),
        ("+1", "price '+1' is not a plain decimal number such as '12.5'"),
        (".5", "price '.5' is not a plain decimal number such as '12.5'"),
        ("5.", "price '5.' is not a plain decimal number such as '12.5'"),
        ("1_000", "price '1_000' is not a plain decimal number such as '12.5'"),
        ("1,5", "price '1,5' is not a plain decimal number such as '12.5'"),
        ("0x10", "price '0x10' is not a plain decimal number such as '12.5'"),
        ("hello1", "price 'hello1' is not a plain decimal number such as '12.5'"),
        ("١٢", "price '١٢' is not a plain decimal number such as '12.5'"),
        ("NaN", "price 'NaN' is not a finite number"),
        ("sNaN", "price 'sNaN' is not a finite number"),
        ("Infinity", "price 'Infinity' is not a finite number"),
        ("-inf", "price '-inf' is not a finite number"),
        ("1e3", "price '1e3' has an exponent; write the number out (0.001, not 1e-3)"),
        ("1E-999999999", "price '1E-999999999' has an exponent; write the number out (0.001, not 1e-3)"),
        ("1" * 41, "price is longer than 40 characters"),
        (65000.01, "price must be a decimal string such as '12.5', got 65000.01 (float)"),
        (65000, "price must be a decimal string such as '12.5', got 65000 (int)"),
        (None, "price must be a decimal string such as '12.5', got None (NoneType)"),
    ],
)
def test_what_is_not_a_plain_decimal_string_is_refused(text: object, message: str) -> None:
    error = _refusal(price_to_ticks, text, "0.01")

    assert (error.reason, str(error)) == ("MALFORMED_DECIMAL", message)


@pytest.mark.parametrize("text", ["0", "0.00", "-0", "-1", "-0.01"])
def test_zero_and_negative_amounts_are_refused(text: str) -> None:
    error = _refusal(qty_to_lots, text, "0.01")

    assert (error.reason, str(error)) == ("NOT_POSITIVE", f"qty must be positive, got {text!r}")


def test_an_amount_beyond_a_long_is_refused() -> None:
    assert _refusal(price_to_ticks, "92233720368547758.08", "0.01").reason == "OUT_OF_RANGE"


def test_domain_errors_are_value_errors_the_gateway_can_catch() -> None:
    assert issubclass(DomainError, ValueError)


@pytest.mark.parametrize(
    ("ticks", "tick_size", "text"),
    [
        (6_500_000, "0.01", "65000.00"),
        (1, "0.01", "0.01"),
        (201, "0.5", "100.5"),
        (200, "0.5", "100.0"),
        (21, "5", "105"),
        (3, "0.010", "0.03"),
        (15_000, "0.00001", "0.15000"),
    ],
)
def test_ticks_become_a_canonical_decimal_string_with_the_tick_decimals(
    ticks: int, tick_size: str, text: str
) -> None:
    assert ticks_to_price(ticks, Decimal(tick_size)) == text


def test_conversion_back_is_exact_beyond_default_decimal_precision() -> None:
    # 19 digits of tick times 19 digits of ticks: 38 digits, more than decimal's default 28.
    ticks, tick_digits = 2**63 - 1, 1_234_567_890_123_456_789
    expected = str(ticks * tick_digits)

    text = ticks_to_price(ticks, Decimal("1234567890.123456789"))

    assert text == f"{expected[:-9]}.{expected[-9:]}"


def test_lots_become_a_canonical_decimal_string() -> None:
    assert lots_to_qty(150, Decimal("0.001")) == "0.150"


def test_a_float_count_of_ticks_is_a_bug() -> None:
    with pytest.raises(TypeError):
        ticks_to_price(1.5, Decimal("0.01"))  # type: ignore[arg-type]


# --- a symbol travels in an AddSymbol command as its registry entry ---------------------------


def test_a_symbols_registry_entry_round_trips_through_add_symbol() -> None:
    symbol = parse_symbol("BTC-USD", _btc(), 4)
    command = {
        "origin": {"request_id": "r-1", "gateway_id": "admin", "reply_partition": 0, "ts_ns": 1},
        "symbol": symbol.name,
        "params": symbol.to_params(),
    }

    _, decoded = decode(*encode("AddSymbol", command))

    assert parse_symbol(decoded["symbol"], decoded["params"], 4) == symbol


def test_add_symbol_params_are_validated_like_the_file() -> None:
    with pytest.raises(DomainError) as caught:
        parse_symbol("BTC-USD", {**_btc(), "tick_size": "0"}, 4)

    assert caught.value.reason == "INVALID_SYMBOL"
    assert str(caught.value) == "symbol 'BTC-USD': tick_size must be positive, got '0'"
