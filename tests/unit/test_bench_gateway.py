"""`exchange bench gateway`'s pure parts: flow rows as order bodies on the grid, and percentiles."""

import asyncio
import json

import pytest

from bench.gateway import (
    DEFAULT_SYMBOLS,
    Tally,
    body_templates,
    latency_ms,
    order_body,
    order_price_ticks,
    read_response,
    with_client_id,
)
from bench.wireflow import FlowRow
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import Symbol, load_registry

REGISTRY = load_registry(DEFAULT_SYMBOLS_FILE)
BTC, ETH = (REGISTRY[name] for name in DEFAULT_SYMBOLS.split(","))
FLOW_MID = 10_000


def limit(price: int, qty: int = 7, side: str = "buy", symbol: str = "SYM000") -> FlowRow:
    return FlowRow(1, "new", symbol, 1, side, "limit", price, qty)


@pytest.mark.parametrize("symbol", [BTC, ETH, REGISTRY["DOGE-USD"], REGISTRY["AAPL"]], ids=lambda s: s.name)
@pytest.mark.parametrize("price", [FLOW_MID - 200, FLOW_MID - 3, FLOW_MID, FLOW_MID + 5, FLOW_MID + 5_000])
def test_limit_body_has_on_tick_price_and_on_lot_quantity(symbol: Symbol, price: int) -> None:
    body = order_body(limit(price), symbol, FLOW_MID)

    # The registry's exact parsing: off the grid would raise OFF_TICK / OFF_LOT.
    assert symbol.price_to_ticks(body["price"]) == order_price_ticks(price, FLOW_MID, symbol)
    assert symbol.qty_to_lots(body["quantity"]) == 7 * symbol.min_qty_lots
    assert body["price"] == symbol.ticks_to_price(symbol.price_to_ticks(body["price"]))  # canonical form


def test_limit_price_keeps_the_flow_offset_from_its_mid_around_the_reference_price() -> None:
    body = order_body(limit(FLOW_MID - 3), BTC, FLOW_MID)

    assert body["price"] == "64999.97"


def test_limit_price_far_from_the_mid_stays_inside_half_the_band() -> None:
    high = BTC.price_to_ticks(order_body(limit(FLOW_MID + 10_000_000), BTC, FLOW_MID)["price"])
    low = BTC.price_to_ticks(order_body(limit(FLOW_MID - 10_000_000), BTC, FLOW_MID)["price"])

    half_band = BTC.reference_price_ticks * BTC.band_bps // 20_000
    assert high == BTC.reference_price_ticks + half_band
    assert low == BTC.reference_price_ticks - half_band


def test_quantity_is_at_least_min_qty_and_at_most_max_qty() -> None:
    assert BTC.qty_to_lots(order_body(limit(FLOW_MID, qty=0), BTC, FLOW_MID)["quantity"]) == BTC.min_qty_lots
    huge = order_body(limit(FLOW_MID, qty=10**12), BTC, FLOW_MID)["quantity"]
    assert BTC.qty_to_lots(huge) == BTC.max_qty_lots


def test_market_row_is_an_unpriced_ioc_order() -> None:
    row = FlowRow(2, "new", "SYM000", 2, "sell", "market", None, 3)

    body = order_body(row, ETH, FLOW_MID)

    assert body == {
        "symbol": "ETH-USD",
        "side": "sell",
        "type": "market",
        "quantity": "0.0030",  # 3 x min_qty 0.001, in the lot size's places
        "time_in_force": "IOC",
    }


def test_templates_skip_cancels_and_map_flow_symbols_round_robin() -> None:
    rows = [
        limit(FLOW_MID, symbol="SYM000"),
        FlowRow(2, "cancel", "SYM000", 1, "", "", None, 0),
        limit(FLOW_MID + 100, symbol="SYM001"),
        limit(FLOW_MID + 200, symbol="SYM002"),
    ]

    bodies = [json.loads(with_client_id(t, f"c{i}")) for i, t in enumerate(body_templates(rows, [BTC, ETH]))]

    assert [(b["symbol"], b["client_order_id"]) for b in bodies] == [
        ("BTC-USD", "c0"),
        ("ETH-USD", "c1"),
        ("BTC-USD", "c2"),
    ]
    # Each flow symbol's own mid maps onto the reference price.
    assert [b["price"] for b in bodies] == ["65000.00", "3500.00", "65000.00"]


def test_latency_percentiles_in_milliseconds() -> None:
    latencies_ns = [i * 1_000_000 for i in range(1, 101)]  # 1 ms .. 100 ms

    assert latency_ms(latencies_ns, 50) == 50.5
    assert latency_ms(latencies_ns, 99) == 99.01
    assert latency_ms([3_000_000], 99) == 3.0


def test_latency_percentile_of_nothing_is_none() -> None:
    assert latency_ms([], 50) is None


def test_response_is_read_by_content_length_and_keeps_the_connection() -> None:
    status, body, keep_alive = asyncio.run(
        _read(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}extra")
    )

    assert (status, body, keep_alive) == (201, b"{}", True)


def test_response_with_connection_close_says_so() -> None:
    status, body, keep_alive = asyncio.run(
        _read(b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    )

    assert (status, body, keep_alive) == (429, b"", False)


async def _read(data: bytes) -> tuple[int, bytes, bool]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return await read_response(reader)


def _answer(code: str) -> bytes:
    return json.dumps({"code": code, "message": "..."}).encode()


def test_the_matchers_refusal_of_what_an_order_asked_is_an_answer_not_an_error() -> None:
    tally = Tally()

    tally.record(201, b"{}", 1_000)
    tally.record(409, _answer("TOO_MANY_OPEN_ORDERS"), 2_000)
    tally.record(422, _answer("PRICE_OUT_OF_BAND"), 3_000)

    assert (tally.placed, dict(tally.rejected), tally.errors) == (
        1,
        {"TOO_MANY_OPEN_ORDERS": 1, "PRICE_OUT_OF_BAND": 1},
        0,
    )
    assert (tally.answered, tally.latencies_ns) == (3, [1_000, 2_000, 3_000])


@pytest.mark.parametrize(
    ("status", "body"),
    [(422, _answer("PRICE_OFF_TICK")), (409, b"not json"), (429, _answer("RATE_LIMITED")), (500, b"{}")],
)
def test_any_other_refusal_is_an_error(status: int, body: bytes) -> None:
    tally = Tally()

    tally.record(status, body, 1_000)

    assert (tally.errors, tally.answered, tally.latencies_ns) == (1, 0, [])
