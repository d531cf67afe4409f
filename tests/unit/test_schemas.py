"""The wire contract the schemas fix (DESIGN.md): which records exist and the rules every field follows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from schemas import default_codec

COMMANDS = (
    "NewOrder",
    "CancelOrder",
    "CancelAll",
    "AmendOrder",
    "Query",
    "HaltSymbol",
    "ResumeSymbol",
    "AddSymbol",
    "RequestBookSnapshot",
)
OUTPUTS = (
    "Reply",
    "ExecutionReport",
    "BookUpdate",
    "BookSnapshot",
    "StateSnapshot",
    "DeadLetter",
    "SymbolUpdate",
)
PRICE_AND_QTY_FIELDS = {"price", "qty", "new_price", "new_qty", "filled", "remaining"}


def _definitions(schema: Any, found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every named type a schema defines, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _definitions(branch, found)
    elif isinstance(schema, dict):
        if schema["type"] in ("record", "enum"):
            found[schema["name"]] = schema
        for field in schema.get("fields", ()):
            _definitions(field["type"], found)
        _definitions(schema.get("items"), found)
    return found


def _all_types() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in default_codec().names:
        _definitions(default_codec().schema(name), found)
    return found


def _type_name(kind: Any) -> Any:
    """A field's type with a named type defined in place written as its full name."""
    return kind["name"] if isinstance(kind, dict) and "name" in kind else kind


def _fields() -> Iterator[tuple[str, str, Any]]:
    """(record, field, type) of every field of every record."""
    for record in _all_types().values():
        for field in record.get("fields", ()):
            yield record["name"], field["name"], _type_name(field["type"])


def _primitive_leaves(schema: Any) -> Iterator[str]:
    if isinstance(schema, str):
        yield schema
    elif isinstance(schema, list):
        for branch in schema:
            yield from _primitive_leaves(branch)
    else:
        for field in schema.get("fields", ()):
            yield from _primitive_leaves(field["type"])
        if "items" in schema:
            yield from _primitive_leaves(schema["items"])


def test_there_is_one_record_type_per_command_and_per_output() -> None:
    assert sorted(default_codec().names) == sorted(COMMANDS + OUTPUTS)


@pytest.mark.parametrize(
    ("enum", "symbols"),
    [
        ("exchange.Side", ["BUY", "SELL"]),
        ("exchange.OrderType", ["LIMIT", "MARKET"]),
        ("exchange.TimeInForce", ["GTC", "IOC", "FOK"]),
        (
            "exchange.SelfTradePrevention",
            ["NONE", "CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH", "DECREMENT_AND_CANCEL"],
        ),
        ("exchange.Liquidity", ["MAKER", "TAKER"]),
    ],
)
def test_enums_keep_their_symbols_in_order(enum: str, symbols: list[str]) -> None:
    # An enum travels as the index of its symbol: reordering would change the meaning of old bytes.
    assert _all_types()[enum]["symbols"] == symbols


def test_no_schema_has_a_float_or_a_double() -> None:
    leaves = {
        leaf for name in default_codec().names for leaf in _primitive_leaves(default_codec().schema(name))
    }

    assert not leaves & {"float", "double"}


def test_prices_and_quantities_are_longs() -> None:
    money = [(record, field, kind) for record, field, kind in _fields() if field in PRICE_AND_QTY_FIELDS]

    assert money  # the check below must have something to check
    assert all(kind in ("long", ["null", "long"]) for _, _, kind in money), money


def test_order_ids_are_longs() -> None:
    ids = [
        (r, f, kind)
        for r, f, kind in _fields()
        if f.endswith("order_id") and not f.endswith("client_order_id")
    ]

    assert ids
    assert all(kind in ("long", ["null", "long"]) for _, _, kind in ids), ids


def test_reasons_are_plain_strings_so_new_codes_never_change_a_schema() -> None:
    reasons = [(r, f, kind) for r, f, kind in _fields() if f == "reason"]

    # Reply, DeadLetter, and the rejected, cancelled and expired execution events
    assert len(reasons) == 5
    assert all(kind in ("string", ["null", "string"]) for _, _, kind in reasons), reasons


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_says_where_its_reply_goes_and_when_it_was_sent(command: str) -> None:
    origin = default_codec().schema(command)["fields"][0]
    origin_type = _all_types()["exchange.Origin"]

    assert origin["name"] == "origin"
    assert _type_name(origin["type"]) == "exchange.Origin"
    assert [f["name"] for f in origin_type["fields"]] == [
        "request_id",
        "gateway_id",
        "reply_partition",
        "ts_ns",
    ]


@pytest.mark.parametrize("record", ["ExecutionReport", "BookUpdate", "BookSnapshot"])
def test_public_and_private_outputs_are_keyed_by_symbol(record: str) -> None:
    assert default_codec().schema(record)["fields"][0]["name"] == "symbol"


def test_every_book_event_carries_its_seq() -> None:
    book_events = ("exchange.LevelChange", "exchange.Trade")

    first_fields = [_all_types()[event]["fields"][0] for event in book_events]

    assert [(field["name"], field["type"]) for field in first_fields] == [("seq", "long"), ("seq", "long")]
