"""The compiled readers and writers against fastavro, the reference, over every schema."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import DecodeError, default_codec
from schemas.compiled import Unsupported, compile_reader, compile_writer, read_long, write_long
from tests.unit.test_codec_properties import NAMES, records_of

CODEC = default_codec()


def parsed(name: str) -> dict[str, Any]:
    """The current schema of ``name`` as fastavro parsed it (its named types inside)."""
    return CODEC._record(name, DecodeError).schema


def fastavro_bytes(name: str, record: Any) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed(name), record, strict_allow_default=True)
    return buffer.getvalue()


def fastavro_record(name: str, value: bytes) -> tuple[Any, int]:
    stream = io.BytesIO(value)
    record = schemaless_reader(
        stream, parsed(name), None, return_record_name=True, return_record_name_override=True
    )
    return record, stream.tell()


def test_every_record_type_has_a_compiled_reader_and_writer() -> None:
    missing = [
        name for name in NAMES if CODEC._records[name].write is None or CODEC._records[name].read is None
    ]

    assert missing == []


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=80)
@given(data=st.data())
def test_the_compiled_writer_writes_fastavros_bytes(name: str, data: st.DataObject) -> None:
    record = data.draw(records_of(CODEC.schema(name), {}), label=name)

    value, _ = CODEC.encode(name, record, checked=False)

    assert value == fastavro_bytes(name, record)


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=80)
@given(data=st.data())
def test_the_compiled_reader_reads_fastavros_bytes_as_fastavro_does(name: str, data: st.DataObject) -> None:
    value = fastavro_bytes(name, data.draw(records_of(CODEC.schema(name), {}), label=name))

    record, end = CODEC._records[name].read(value)  # type: ignore[misc]

    assert (record, end) == fastavro_record(name, value)


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=80)
@given(value=st.binary(max_size=64))
def test_whatever_bytes_the_compiled_reader_accepts_fastavro_reads_the_same(name: str, value: bytes) -> None:
    try:
        compiled = CODEC._records[name].read(value)  # type: ignore[misc]
    except (IndexError, EOFError, KeyError, ValueError):
        return  # refused: the codec says UNDECODABLE (fastavro may or may not have refused)

    assert compiled == fastavro_record(name, value)


@settings(max_examples=300)
@given(st.integers(-(2**63), 2**63 - 1))
def test_a_long_reads_back_as_written(n: int) -> None:
    assert read_long(write_long(n) + b"tail", 0) == (n, len(write_long(n)))


def test_a_varint_of_more_than_64_bits_is_refused() -> None:
    with pytest.raises(ValueError, match="64 bits"):
        read_long(b"\x80" * 9 + b"\x02", 0)


@pytest.mark.parametrize("n", [0, -1, 1, 63, -64, 64, 8191, -8192, 8192, 2**31 - 1, -(2**63), 2**63 - 1])
def test_a_long_is_written_as_fastavro_writes_it(n: int) -> None:
    schema = parse_schema({"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}]})
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, {"n": n})

    assert write_long(n) == buffer.getvalue()


ENUM = parse_schema(
    {
        "type": "record",
        "name": "E",
        "fields": [{"name": "e", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}}],
    }
)


def test_a_negative_enum_index_is_refused_though_fastavro_counts_it_from_the_end() -> None:
    read = compile_reader(ENUM, {})

    with pytest.raises(KeyError):
        read(write_long(-1))
    assert fastavro_record_of(ENUM, write_long(-1)) == {"e": "B"}


def fastavro_record_of(schema: Any, value: bytes) -> Any:
    return schemaless_reader(io.BytesIO(value), schema, None)


def test_a_truncated_string_is_refused() -> None:
    schema = parse_schema({"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]})

    with pytest.raises(EOFError):
        compile_reader(schema, {})(write_long(5) + b"abc")


def test_a_missing_field_with_a_plain_default_is_written_as_its_default() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "D",
            "fields": [
                {"name": "a", "type": "long"},
                {"name": "b", "type": ["null", "string"], "default": None},
            ],
        }
    )

    assert compile_writer(schema, {})({"a": 7}) == compile_writer(schema, {})({"a": 7, "b": None})


def test_a_union_of_a_string_and_a_long_is_left_to_fastavro() -> None:
    schema = parse_schema(
        {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["string", "long"]}]}
    )

    with pytest.raises(Unsupported):
        compile_writer(schema, {})
    with pytest.raises(Unsupported):
        compile_reader(schema, {})
