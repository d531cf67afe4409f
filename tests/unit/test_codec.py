"""The codec: every record type round-trips, and what a consumer cannot read is refused in one line."""

from __future__ import annotations

import copy
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from runtime.errors import UserError
from schemas import CodecError, DecodeError, EncodeError, SchemaError, decode, default_codec, encode
from schemas.codec import RELEASED_FILE, SCHEMA_DIR

ORIGIN = {
    "request_id": "req-7f3a",
    "gateway_id": "gateway-0",
    "reply_partition": 1,
    "ts_ns": 1_732_000_000_123_456_789,
}
ORDER_ID = (2 << 48) | 41  # partition 2, orders offset 41
RESTING_ID = (2 << 48) | 17

# One realistic record of every type the cluster writes (test_every_record_type_has_an_example keeps it so).
EXAMPLES: dict[str, dict[str, Any]] = {
    "NewOrder": {
        "origin": ORIGIN,
        "symbol": "BTC-USD",
        "account": "acct-42",
        "client_order_id": "my-order-1",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "price": 6_500_001,
        "qty": 150,
        "post_only": True,
        "self_trade_prevention": "CANCEL_NEWEST",
    },
    "CancelOrder": {
        "origin": ORIGIN,
        "symbol": "BTC-USD",
        "account": "acct-42",
        "order_id": None,
        "client_order_id": "my-order-1",
    },
    "CancelAll": {"origin": ORIGIN, "symbol": "ETH-USD", "account": "acct-42"},
    "AmendOrder": {
        "origin": ORIGIN,
        "symbol": "BTC-USD",
        "account": "acct-42",
        "order_id": ORDER_ID,
        "client_order_id": None,
        "new_qty": 100,
        "new_price": None,
    },
    "Query": {
        "origin": ORIGIN,
        "symbol": "BTC-USD",
        "account": "acct-42",
        "kind": "BOOK",
        "order_id": None,
        "client_order_id": None,
        "depth": 10,
    },
    "HaltSymbol": {"origin": ORIGIN, "symbol": "AAPL"},
    "ResumeSymbol": {"origin": ORIGIN, "symbol": "AAPL"},
    "AddSymbol": {
        "origin": ORIGIN,
        "symbol": "ADA-USD",
        "params": {
            "partition": 3,
            "tick_size": "0.0001",
            "lot_size": "1",
            "min_qty": "10",
            "max_qty": "1000000",
            "reference_price": "0.4500",
            "band_percent": "20",
            "status": "trading",
            "max_open_orders": 200,
        },
    },
    "RequestBookSnapshot": {"origin": ORIGIN, "symbol": "SOL-USD"},
    "Reply": {
        "request_id": "req-7f3a",
        "symbol": "BTC-USD",
        "partition": 0,
        "command_offset": 41,
        "ts_ns": 1_732_000_000_123_456_789,
        "part": 0,
        "parts": 1,
        "result": "ACCEPTED",
        "reason": None,
        "orders": [
            {
                "order_id": ORDER_ID,
                "client_order_id": "my-order-1",
                "account": "acct-42",
                "side": "BUY",
                "order_type": "LIMIT",
                "price": 6_500_001,
                "qty": 150,
                "filled": 50,
                "remaining": 100,
                "status": "PARTIALLY_FILLED",
                "ts_ns": 1_732_000_000_123_456_789,
            }
        ],
        "fills": [
            {
                "event_id": (41 << 16) | 1,
                "order_id": ORDER_ID,
                "counterparty_order_id": RESTING_ID,
                "price": 6_500_000,
                "qty": 50,
                "liquidity": "TAKER",
            }
        ],
        "prevented_matches": [
            {
                "event_id": (41 << 16) | 2,
                "order_id": ORDER_ID,
                "counterparty_order_id": RESTING_ID,
                "cancelled_qty": 100,
                "stp_mode": "CANCEL_NEWEST",
            }
        ],
        "book": {"seq": 1_002, "bids": [{"price": 6_500_001, "qty": 100, "order_count": 1}], "asks": []},
    },
    "ExecutionReport": {
        "symbol": "BTC-USD",
        "command_offset": 41,
        "ts_ns": 1_732_000_000_123_456_789,
        "part": 1,
        "parts": 3,
        "events": [
            (
                "exchange.OrderAccepted",
                {
                    "event_id": (41 << 16) | 0,
                    "order_id": ORDER_ID,
                    "account": "acct-42",
                    "client_order_id": "my-order-1",
                    "side": "BUY",
                    "order_type": "LIMIT",
                    "time_in_force": "GTC",
                    "price": 6_500_001,
                    "qty": 150,
                },
            ),
            (
                "exchange.OrderFilled",
                {
                    "event_id": (41 << 16) | 1,
                    "price": 6_500_000,
                    "qty": 50,
                    "aggressor_side": "BUY",
                    "taker_order_id": ORDER_ID,
                    "taker_account": "acct-42",
                    "taker_client_order_id": "my-order-1",
                    "taker_leaves": 100,
                    "maker_order_id": RESTING_ID,
                    "maker_account": "acct-7",
                    "maker_client_order_id": None,
                    "maker_leaves": 0,
                },
            ),
            (
                "exchange.OrderCancelled",
                {
                    "event_id": (41 << 16) | 2,
                    "order_id": ORDER_ID,
                    "account": "acct-42",
                    "client_order_id": "my-order-1",
                    "cancelled_qty": 100,
                    "leaves": 0,
                    "reason": "SELF_TRADE_PREVENTION",
                    "counterparty_order_id": RESTING_ID,
                    "stp_mode": "CANCEL_NEWEST",
                },
            ),
        ],
    },
    "BookUpdate": {
        "symbol": "BTC-USD",
        "command_offset": 41,
        "ts_ns": 1_732_000_000_123_456_789,
        "part": 0,
        "parts": 1,
        "events": [
            (
                "exchange.Trade",
                {
                    "seq": 1_001,
                    "trade_id": (41 << 16) | 1,
                    "price": 6_500_000,
                    "qty": 50,
                    "taker_side": "BUY",
                },
            ),
            (
                "exchange.LevelChange",
                {"seq": 1_002, "side": "SELL", "price": 6_500_000, "qty": 0, "order_count": 0},
            ),
            (
                "exchange.LevelChange",
                {"seq": 1_003, "side": "BUY", "price": 6_500_001, "qty": 100, "order_count": 1},
            ),
        ],
    },
    "BookSnapshot": {
        "symbol": "BTC-USD",
        "seq": 1_003,
        "ts_ns": 1_732_000_000_123_456_789,
        "part": 0,
        "parts": 1,
        "bids": [
            {"price": 6_500_001, "qty": 100, "order_count": 1},
            {"price": 6_499_000, "qty": 7, "order_count": 2},
        ],
        "asks": [{"price": 6_500_100, "qty": 30, "order_count": 1}],
    },
    "StateSnapshot": {
        "partition": 2,
        "orders_offset": 42,
        "ts_ns": 1_732_000_000_123_456_789,
        "format_version": 1,
        "state": b"\x00\x01engine state\xff",
    },
    "SymbolUpdate": {
        "symbol": "ADA-USD",
        "command_offset": 44,
        "ts_ns": 1_732_000_000_123_456_789,
        "params": {
            "partition": 2,
            "tick_size": "0.0001",
            "lot_size": "1",
            "min_qty": "1",
            "max_qty": "1000000",
            "reference_price": "0.4500",
            "band_percent": "10",
            "status": "trading",
            "max_open_orders": 50,
        },
        "halted": None,
    },
    "DeadLetter": {
        "source_topic": "orders",
        "source_partition": 2,
        "source_offset": 43,
        "key": b"BTC-USD",
        "value": b"\x02garbage",
        "headers": [{"key": "schema", "value": b"NewOrder"}, {"key": "schema-version", "value": b"9"}],
        "reason": "UNKNOWN_VERSION",
        "error": "NewOrder version 9 is unknown here (known: 1); upgrade this consumer",
    },
}


def _headers(name: str = "NewOrder", version: str = "1") -> list[tuple[str, bytes]]:
    return [("schema", name.encode()), ("schema-version", version.encode())]


def _new_order_bytes() -> bytes:
    value, _ = encode("NewOrder", EXAMPLES["NewOrder"])
    return value


def _decode_error(value: bytes | None, headers: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode(value, headers)
    assert "\n" not in str(caught.value)
    return caught.value


# --- round trips ---------------------------------------------------------------------------------


def test_every_record_type_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(default_codec().names)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_record_type_round_trips(name: str) -> None:
    value, headers = encode(name, EXAMPLES[name])

    assert decode(value, headers) == (name, EXAMPLES[name])


def test_encode_names_the_schema_and_its_version_in_headers() -> None:
    _, headers = encode("CancelAll", EXAMPLES["CancelAll"])

    assert headers == [("schema", b"CancelAll"), ("schema-version", b"1")]


def test_decode_reads_headers_given_as_a_mapping_of_text() -> None:
    value, _ = encode("CancelAll", EXAMPLES["CancelAll"])

    assert decode(value, {"schema": "CancelAll", "schema-version": "1"}) == (
        "CancelAll",
        EXAMPLES["CancelAll"],
    )


def test_decode_ignores_headers_it_does_not_know() -> None:
    value, headers = encode("CancelAll", EXAMPLES["CancelAll"])

    assert decode(value, [("traceparent", b"00-abc"), *headers])[0] == "CancelAll"


def test_a_field_left_out_gets_its_schema_default() -> None:
    order = {k: v for k, v in EXAMPLES["NewOrder"].items() if k not in ("post_only", "self_trade_prevention")}

    _, decoded = decode(*encode("NewOrder", order))

    assert (decoded["post_only"], decoded["self_trade_prevention"]) == (False, "NONE")


def test_a_market_order_has_no_price() -> None:
    market = {**EXAMPLES["NewOrder"], "order_type": "MARKET", "time_in_force": "IOC", "price": None}

    assert decode(*encode("NewOrder", market))[1]["price"] is None


def test_the_largest_order_id_fits() -> None:
    largest = ((1 << 15) - 1) << 48 | ((1 << 48) - 1)
    amend = {**EXAMPLES["AmendOrder"], "order_id": largest}

    assert decode(*encode("AmendOrder", amend))[1]["order_id"] == largest


# --- encoding refuses records that do not fit (bugs in a producer) ------------------------------


def test_encode_refuses_an_unknown_record_name() -> None:
    with pytest.raises(EncodeError) as caught:
        encode("NewOrdr", EXAMPLES["NewOrder"])

    assert caught.value.reason == "UNKNOWN_SCHEMA"
    assert "'NewOrdr'" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("qty", 1.5), ("price", 65000.01), ("qty", True), ("qty", 1 << 63), ("side", "LONG"), ("symbol", None)],
)
def test_encode_refuses_a_field_of_the_wrong_type(field: str, value: object) -> None:
    # A float quantity would otherwise be truncated to a whole number of lots without a word.
    with pytest.raises(EncodeError) as caught:
        encode("NewOrder", {**EXAMPLES["NewOrder"], field: value})

    assert caught.value.reason == "INVALID_RECORD"
    assert field in str(caught.value)
    assert "\n" not in str(caught.value)


def _with(name: str, path: tuple[Any, ...], value: object) -> dict[str, Any]:
    """A deep copy of EXAMPLES[name] with the value at ``path`` (keys and list indexes) replaced."""
    record = copy.deepcopy(EXAMPLES[name])
    *parents, last = path
    container: Any = record
    for step in parents:
        container = container[step]
    container[last] = value
    return record


@pytest.mark.parametrize(
    ("name", "path", "value", "where"),
    [
        ("NewOrder", ("qty",), Decimal("1.5"), "NewOrder.qty"),
        ("NewOrder", ("origin", "reply_partition"), 1 << 40, "NewOrder.origin.reply_partition"),
        ("NewOrder", ("post_only",), 1, "NewOrder.post_only"),
        ("Reply", ("fills", 0, "qty"), 2.5, "Reply.fills[].qty"),
        (
            "ExecutionReport",
            ("events", 1, 1, "taker_leaves"),
            50.0,
            "ExecutionReport.events[]<exchange.OrderFilled>.taker_leaves",
        ),
        (
            "BookUpdate",
            ("events", 0),
            ("exchange.Trade", {**EXAMPLES["BookUpdate"]["events"][0][1], "qty": 0.5}),
            "BookUpdate.events[]<exchange.Trade>.qty",
        ),
    ],
)
def test_encode_refuses_a_number_that_is_not_an_exact_integer_anywhere_in_a_record(
    name: str, path: tuple[Any, ...], value: object, where: str
) -> None:
    # fastavro's writer alone would write these as truncated integers without a word.
    with pytest.raises(EncodeError, match=re.escape(where)):
        encode(name, _with(name, path, value))


def test_encode_refuses_a_misspelt_field() -> None:
    misspelt = {**EXAMPLES["NewOrder"], "post_onyl": True}

    with pytest.raises(EncodeError, match="post_onyl"):
        encode("NewOrder", misspelt)


def test_encode_refuses_a_missing_required_field() -> None:
    without_qty = {k: v for k, v in EXAMPLES["NewOrder"].items() if k != "qty"}

    with pytest.raises(EncodeError, match="qty"):
        encode("NewOrder", without_qty)


# --- decoding refuses what it cannot read (the matcher sends it to the dead-letter topic) ---------


def test_codec_errors_are_one_exception_type_with_a_reason() -> None:
    error = _decode_error(_new_order_bytes(), None)

    assert isinstance(error, CodecError)
    assert isinstance(error, ValueError)
    assert error.reason == "MISSING_HEADER"


def test_decode_refuses_a_record_without_headers() -> None:
    assert _decode_error(_new_order_bytes(), []).reason == "MISSING_HEADER"


def test_decode_refuses_a_record_without_a_version_header() -> None:
    error = _decode_error(_new_order_bytes(), [("schema", b"NewOrder")])

    assert error.reason == "MISSING_HEADER"
    assert "schema-version" in str(error)


def test_decode_refuses_an_unknown_schema() -> None:
    error = _decode_error(_new_order_bytes(), _headers("OrderBlob"))

    assert error.reason == "UNKNOWN_SCHEMA"
    assert "'OrderBlob'" in str(error)


def test_decode_refuses_a_newer_version_and_says_to_upgrade() -> None:
    error = _decode_error(_new_order_bytes(), _headers(version="2"))

    assert error.reason == "UNKNOWN_VERSION"
    assert str(error) == "NewOrder version 2 is unknown here (known: 1); upgrade this consumer"


@pytest.mark.parametrize("version", [b"", b"one", b"-1", b"1.0", "١".encode()])
def test_decode_refuses_a_version_that_is_not_a_number(version: bytes) -> None:
    error = _decode_error(_new_order_bytes(), [("schema", b"NewOrder"), ("schema-version", version)])

    assert error.reason == "MALFORMED_HEADER"


def test_decode_refuses_a_header_that_is_not_ascii() -> None:
    error = _decode_error(_new_order_bytes(), [("schema", b"\xffNewOrder"), ("schema-version", b"1")])

    assert error.reason == "MALFORMED_HEADER"


def test_decode_refuses_a_tombstone() -> None:
    assert _decode_error(None, _headers()).reason == "UNDECODABLE"


def test_decode_refuses_truncated_bytes() -> None:
    error = _decode_error(_new_order_bytes()[:-3], _headers())

    assert error.reason == "UNDECODABLE"
    assert str(error).startswith("NewOrder v1: cannot decode")


def test_decode_refuses_bytes_left_over_after_the_record() -> None:
    error = _decode_error(_new_order_bytes() + b"\x00", _headers())

    assert error.reason == "UNDECODABLE"
    assert "1 bytes left over" in str(error)


def test_decode_refuses_an_enum_index_out_of_range() -> None:
    buy, _ = encode("NewOrder", {**EXAMPLES["NewOrder"], "side": "BUY"})
    sell, _ = encode("NewOrder", {**EXAMPLES["NewOrder"], "side": "SELL"})
    (side_at,) = [i for i, (x, y) in enumerate(zip(buy, sell, strict=True)) if x != y]
    eighth_side = buy[:side_at] + bytes([7 << 1]) + buy[side_at + 1 :]  # zigzag varint of index 7

    assert _decode_error(eighth_side, _headers()).reason == "UNDECODABLE"


def test_schema_errors_are_user_errors() -> None:
    assert issubclass(SchemaError, UserError)


def _written_by(name: str, version: int, record: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``record`` as a writer of the released ``version`` of ``name`` put it on the wire."""
    released = json.loads((SCHEMA_DIR / RELEASED_FILE).read_text(encoding="utf-8"))
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(json.loads(released[name][str(version)])), record)
    return buffer.getvalue(), _headers(name, str(version))


def test_a_cancel_written_before_prevented_matches_were_reported_reads_with_no_counterparty() -> None:
    _, cancel = EXAMPLES["ExecutionReport"]["events"][2]
    before = {k: v for k, v in cancel.items() if k not in ("counterparty_order_id", "stp_mode")}
    old = {**EXAMPLES["ExecutionReport"], "events": [("exchange.OrderCancelled", before)]}

    _, record = decode(*_written_by("ExecutionReport", 2, old))

    [(_, event)] = record["events"]
    assert (event["counterparty_order_id"], event["stp_mode"]) == (None, None)


def test_a_reply_written_before_prevented_matches_were_reported_reads_with_none() -> None:
    old = {k: v for k, v in EXAMPLES["Reply"].items() if k != "prevented_matches"}

    _, record = decode(*_written_by("Reply", 2, old))

    assert record["prevented_matches"] == []


def test_a_listing_written_before_open_order_limits_reads_with_no_limit() -> None:
    # Its symbol was matched without a limit: a replay of the listing must not add one.
    params = {k: v for k, v in EXAMPLES["AddSymbol"]["params"].items() if k != "max_open_orders"}

    _, record = decode(*_written_by("AddSymbol", 1, {**EXAMPLES["AddSymbol"], "params": params}))

    assert record["params"]["max_open_orders"] == 0
