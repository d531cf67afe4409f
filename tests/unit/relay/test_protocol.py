"""The WebSocket protocol: requests parsed or refused with a code, messages rendered with decimal strings."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from relay.market import SymbolMarket
from relay.protocol import (
    Channel,
    ErrorCode,
    ProtocolError,
    Units,
    book_snapshot,
    encode,
    parse_request,
    ticker,
)
from tests.unit.relay.test_market import level, snapshot, trade, update

UNITS = Units(Decimal("0.01"), Decimal("0.001"))


def test_a_book_subscription_is_parsed_with_its_depth_and_resume_seq() -> None:
    request = parse_request('{"op": "subscribe", "channel": "book", "symbol": "BTC-USD", "depth": 100, '
                            '"resume_seq": 42, "id": 7}')  # fmt: skip

    assert (request.op, request.channel, request.symbol, request.depth, request.resume_seq, request.id) == (
        "subscribe", Channel.BOOK, "BTC-USD", 100, 42, 7,
    )  # fmt: skip


def test_a_book_subscription_defaults_to_25_levels() -> None:
    assert parse_request('{"op": "subscribe", "channel": "book", "symbol": "X"}').depth == 25


def test_the_executions_channel_needs_no_symbol() -> None:
    request = parse_request('{"op": "subscribe", "channel": "executions"}')

    assert (request.channel, request.symbol) == (Channel.EXECUTIONS, None)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", ErrorCode.BAD_JSON),
        ("[" * 50_000, ErrorCode.BAD_JSON),
        ('"subscribe"', ErrorCode.BAD_REQUEST),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "id": -1}', ErrorCode.BAD_REQUEST),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "id": true}', ErrorCode.BAD_REQUEST),
        ('{"op": "shout"}', ErrorCode.UNKNOWN_OP),
        ('{"op": "subscribe", "channel": "news", "symbol": "X"}', ErrorCode.UNKNOWN_CHANNEL),
        ('{"op": "subscribe", "channel": ["book"], "symbol": "X"}', ErrorCode.UNKNOWN_CHANNEL),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "depth": 10}', ErrorCode.BAD_DEPTH),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "depth": true}', ErrorCode.BAD_DEPTH),
        ('{"op": "subscribe", "channel": "book", "symbol": ""}', ErrorCode.BAD_REQUEST),
        ('{"op": "subscribe", "channel": "book", "symbol": "X", "resume_seq": "1"}', ErrorCode.BAD_REQUEST),
        ('{"op": "subscribe", "channel": "ticker", "symbol": "X", "resume_seq": 1}', ErrorCode.BAD_REQUEST),
        ('{"op": "auth", "key": "k", "timestamp": "1"}', ErrorCode.BAD_REQUEST),
    ],
)
def test_a_malformed_request_is_refused_with_its_code(text: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_request(text)

    assert refused.value.code is code


def test_a_refusal_names_the_request_id_when_it_could_be_read() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_request('{"op": "subscribe", "channel": "nope", "id": 5}')

    assert refused.value.request_id == 5


def test_units_are_exact_decimal_strings_of_the_symbol() -> None:
    assert (UNITS.price(6_500_001), UNITS.qty(1), UNITS.qty(12_000)) == ("65000.01", "0.001", "12.000")


def test_a_book_snapshot_carries_levels_as_strings_seq_and_checksum() -> None:
    market = SymbolMarket("BTC-USD")
    market.take_snapshot(snapshot(9, [(10_000, 1_500), (9_999, 1)], [(10_001, 2)]))

    message = json.loads(book_snapshot(market, UNITS, 25))

    assert message["type"] == "book_snapshot"
    assert (message["seq"], message["bids"], message["asks"]) == (
        9, [["100.00", "1.500"], ["99.99", "0.001"]], [["100.01", "0.002"]],
    )  # fmt: skip
    assert isinstance(message["checksum"], int)


def test_a_ticker_renders_missing_sides_as_null() -> None:
    market = SymbolMarket("BTC-USD")
    market.apply(update(level(1, "BUY", 10_000, 5), trade(2, 10_000, 5)))

    message = json.loads(ticker("BTC-USD", UNITS, market.ticker()))

    assert (message["bid"], message["ask"], message["last"], message["volume_24h"]) == (
        ["100.00", "0.005"], None, ["100.00", "0.005"], "0.005",
    )  # fmt: skip


def test_messages_are_compact_json() -> None:
    assert encode({"type": "x", "list": [1, 2]}) == b'{"type":"x","list":[1,2]}'
