"""From the wire to the REST API: decimal strings for prices and quantities, strings for ids."""

from __future__ import annotations

from typing import Any

from gateway.models import average_price, book_out, order_out
from runtime.symbols import Symbol, parse_symbol
from tests.unit.listings import btc_params

# Above 2**53: a JavaScript number would round it.
BIG_ID = (100 << 48) | 12_345


def _fill(price_ticks: int, qty_lots: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": 11,
        "order_id": 5,
        "counterparty_order_id": 4,
        "price": price_ticks,
        "qty": qty_lots,
        "liquidity": "TAKER",
        **changes,
    }


def _state(**changes: Any) -> dict[str, Any]:
    """BTC-USD: a buy of 0.5 at 65000.00, 0.2 filled."""
    return {
        "order_id": 5,
        "client_order_id": "cli-1",
        "account": "acct-1",
        "side": "BUY",
        "order_type": "LIMIT",
        "price": 6_500_000,
        "qty": 50_000,
        "filled": 20_000,
        "remaining": 30_000,
        "status": "PARTIALLY_FILLED",
        "ts_ns": 1_700_000_000_000_000_000,
        **changes,
    }


# --- average_price -------------------------------------------------------------------------------


def test_no_fills_have_no_average_price(btc: Symbol) -> None:
    assert average_price(btc, []) is None


def test_an_average_on_the_tick_keeps_the_ticks_places(btc: Symbol) -> None:
    assert average_price(btc, [_fill(6_500_000, 3), _fill(6_500_000, 1)]) == "65000.00"


def test_the_average_is_weighted_by_quantity(btc: Symbol) -> None:
    # (65000.00 * 1 + 65001.00 * 3) / 4 = 65000.75
    assert average_price(btc, [_fill(6_500_000, 1), _fill(6_500_100, 3)]) == "65000.75"


def test_an_exact_average_between_ticks_keeps_its_extra_places(btc: Symbol) -> None:
    assert average_price(btc, [_fill(6_500_000, 1), _fill(6_500_001, 1)]) == "65000.005"


def test_a_non_terminating_average_is_rounded_to_the_ticks_places_plus_eight(btc: Symbol) -> None:
    # (65000.00 + 2 * 65000.01) / 3 = 65000.00666... -> 2 + 8 decimals, rounded half-even
    assert average_price(btc, [_fill(6_500_000, 1), _fill(6_500_001, 2)]) == "65000.0066666667"


def test_the_average_at_the_largest_price_a_quarter_tick_symbol_accepts_is_exact() -> None:
    # A tick of 0.025 lets an 18-digit price (the most the gateway accepts) reach 8e18 ticks, inside int64.
    symbol = parse_symbol("QTR", btc_params(tick_size="0.025", reference_price="1.000", band_percent="0"), 1)
    ticks = symbol.price_to_ticks("200000000000000000")

    assert average_price(symbol, [_fill(ticks, 1)]) == "200000000000000000.000"


# --- order_out -----------------------------------------------------------------------------------


def test_an_order_gives_prices_and_quantities_as_decimal_strings(btc: Symbol) -> None:
    out = order_out(btc, _state(), [], "req-1")

    assert (out.price, out.quantity, out.filled, out.remaining) == (
        "65000.00",
        "0.50000",
        "0.20000",
        "0.30000",
    )


def test_an_order_gives_its_id_as_a_string(btc: Symbol) -> None:
    out = order_out(btc, _state(order_id=BIG_ID), [], "req-1")

    assert out.order_id == str(BIG_ID)


def test_an_order_gives_its_fills_with_trade_ids_as_strings(btc: Symbol) -> None:
    fills = [_fill(6_500_000, 20_000, event_id=BIG_ID, liquidity="MAKER")]

    out = order_out(btc, _state(), fills, "req-1")

    assert [fill.model_dump() for fill in out.fills] == [
        {"trade_id": str(BIG_ID), "price": "65000.00", "quantity": "0.20000", "liquidity": "maker"}
    ]


def test_an_order_gives_the_matches_self_trade_prevention_stopped_with_ids_as_strings(btc: Symbol) -> None:
    prevented = {
        "event_id": BIG_ID,
        "order_id": 5,
        "counterparty_order_id": 4,
        "cancelled_qty": 30_000,
        "stp_mode": "CANCEL_NEWEST",
    }

    out = order_out(btc, _state(), [], "req-1", [prevented])

    assert [p.model_dump() for p in out.prevented_matches] == [
        {
            "event_id": str(BIG_ID),
            "order_id": "5",
            "counterparty_order_id": "4",
            "quantity": "0.30000",
            "self_trade_prevention": "cancel_newest",
        }
    ]


def test_an_order_without_prevented_matches_lists_none(btc: Symbol) -> None:
    assert order_out(btc, _state(), [], "req-1").prevented_matches == []


def test_an_order_gives_the_average_price_of_its_fills(btc: Symbol) -> None:
    out = order_out(btc, _state(), [_fill(6_500_000, 10_000), _fill(6_500_100, 10_000)], "req-1")

    assert out.average_price == "65000.50"


def test_an_order_without_fills_has_no_average_price(btc: Symbol) -> None:
    assert order_out(btc, _state(), [], "req-1").average_price is None


def test_an_order_names_its_side_type_and_status_in_the_apis_terms(btc: Symbol) -> None:
    out = order_out(btc, _state(side="SELL", order_type="MARKET", price=None, status="FILLED"), [], "req-1")

    assert (out.side, out.type, out.price, out.status) == ("sell", "market", None, "FILLED")


def test_an_order_carries_its_symbol_client_order_id_time_and_request_id(btc: Symbol) -> None:
    out = order_out(btc, _state(), [], "req-1")

    assert (out.symbol, out.client_order_id, out.created_at_ns, out.request_id) == (
        "BTC-USD",
        "cli-1",
        1_700_000_000_000_000_000,
        "req-1",
    )


# --- book_out ------------------------------------------------------------------------------------


def test_a_book_gives_its_levels_as_decimal_strings_with_order_counts(btc: Symbol) -> None:
    book = {
        "seq": 42,
        "bids": [{"price": 6_499_999, "qty": 150_000, "order_count": 2}],
        "asks": [
            {"price": 6_500_001, "qty": 1, "order_count": 1},
            {"price": 6_500_100, "qty": 7, "order_count": 3},
        ],
    }

    out = book_out(btc, book)

    assert out.model_dump() == {
        "symbol": "BTC-USD",
        "seq": 42,
        "bids": [{"price": "64999.99", "quantity": "1.50000", "orders": 2}],
        "asks": [
            {"price": "65000.01", "quantity": "0.00001", "orders": 1},
            {"price": "65001.00", "quantity": "0.00007", "orders": 3},
        ],
    }


def test_an_empty_book_has_no_levels(btc: Symbol) -> None:
    out = book_out(btc, {"seq": 0, "bids": [], "asks": []})

    assert (out.bids, out.asks) == ([], [])
