"""Properties of the codec over generated records of every type, built from the schemas themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DecodeError, decode, default_codec, encode

PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "string": st.text(max_size=12),
    "bytes": st.binary(max_size=24),
}


def records_of(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of an Avro schema as the codec reads and writes them (a union of records as (name, record))."""
    if isinstance(schema, str):
        return PRIMITIVES[schema] if schema in PRIMITIVES else records_of(named[schema], named)
    if isinstance(schema, list):
        return _union(schema, named)
    kind = schema["type"]
    if kind in ("record", "enum"):
        named[schema["name"]] = schema
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: records_of(f["type"], named) for f in schema["fields"]})
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(records_of(schema["items"], named), max_size=3)
    raise AssertionError(f"no strategy for {schema!r} (float and double must never appear)")


def _union(branches: list[Any], named: dict[str, Any]) -> st.SearchStrategy[Any]:
    strategies = [records_of(branch, named) for branch in branches]  # defines the branches' named types
    record_names = [_record_name(branch, named) for branch in branches]
    if sum(name is not None for name in record_names) <= 1:
        return st.one_of(strategies)
    # With several record branches, the record's name says which branch it is.
    return st.one_of(
        [
            strategy if name is None else strategy.map(_tagged(name))
            for strategy, name in zip(strategies, record_names, strict=True)
        ]
    )


def _tagged(name: str) -> Callable[[Any], tuple[str, Any]]:
    return lambda record: (name, record)


def _record_name(branch: Any, named: dict[str, Any]) -> str | None:
    schema = named.get(branch, branch) if isinstance(branch, str) else branch
    return schema["name"] if isinstance(schema, dict) and schema["type"] == "record" else None


NAMES = default_codec().names


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_decode_inverts_encode_for_every_record_type(name: str, data: st.DataObject) -> None:
    record = data.draw(records_of(default_codec().schema(name), {}), label=name)

    assert decode(*encode(name, record)) == (name, record)


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=60)
@given(value=st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error_only(name: str, value: bytes) -> None:
    headers = [("schema", name.encode()), ("schema-version", str(default_codec().version(name)).encode())]

    try:
        decoded_name, _ = decode(value, headers)
    except DecodeError as error:
        assert error.reason == "UNDECODABLE"
        assert "\n" not in str(error)
    else:
        assert decoded_name == name
