"""Avro readers and writers compiled from the schemas: Python source generated once per record type.

fastavro walks the schema for every record it reads or writes; on the matcher's hot path that
walk costs more than matching does. Here the walk happens once: each record type becomes a
function with a straight line of code per field, its named types functions of their own and its
enums lookup tables. Their bytes and records are exactly fastavro's (property tests hold the two
against each other over every schema), with two differences, both on purpose:

- the **writer** does not validate. It is for records our own code builds
  (``Codec.encode(..., checked=False)``); a union of several record types takes a
  ``(full name, record)`` pair as fastavro's tuple notation does, and a missing field takes its
  default when that is a plain value;
- the **reader** is stricter: a negative enum or union index is an error, where fastavro counts
  it from the end, and so is a varint of more than 64 bits, which fastavro wraps around.

A schema shape neither handles (a union of several non-null branches that are not all records)
raises :class:`Unsupported` at compile time, and the codec keeps fastavro for that record.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

Writer = Callable[[dict[str, Any]], bytes]  # compiled, it takes a dict and nothing else
Reader = Callable[[bytes], tuple[dict[str, Any], int]]  # the record and where it ended


class Unsupported(ValueError):
    """A schema shape the compiler does not handle (the caller keeps fastavro for it)."""


# --- varints ---------------------------------------------------------------------------------------

# A varint is 7 bits a byte, the high bit set on every byte but the last. Two tables of every
# 14-bit value, as the last bytes of a varint and as two bytes that go on, turn the loop over
# bits into at most five lookups for a 64-bit number (most numbers take one).
_CHUNK_BITS = 14
_CHUNK = (1 << _CHUNK_BITS) - 1


def _unsigned_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LAST = tuple(_unsigned_varint(value) for value in range(_CHUNK + 1))
_GOING_ON = tuple(bytes(((value & 0x7F) | 0x80, (value >> 7) | 0x80)) for value in range(_CHUNK + 1))


def write_long(n: int, _last: tuple[bytes, ...] = _LAST, _going_on: tuple[bytes, ...] = _GOING_ON) -> bytes:
    """An Avro int or long: its zigzag form as a varint."""
    zigzag = (n << 1) ^ (n >> 63)
    if zigzag <= _CHUNK:
        return _last[zigzag]
    out = _going_on[zigzag & _CHUNK]
    zigzag >>= _CHUNK_BITS
    while zigzag > _CHUNK:
        out += _going_on[zigzag & _CHUNK]
        zigzag >>= _CHUNK_BITS
    return out + _last[zigzag]


def write_string(text: str, _last: tuple[bytes, ...] = _LAST) -> bytes:
    """An Avro string: its UTF-8 length, then its UTF-8 bytes."""
    data = text.encode()
    size = len(data)
    return (_last[size << 1] if size <= _CHUNK >> 1 else write_long(size)) + data


def write_bytes(data: bytes) -> bytes:
    return write_long(len(data)) + data


def read_long(data: bytes, position: int) -> tuple[int, int]:
    """The int or long at ``position`` and the position after it (IndexError past the end)."""
    byte = data[position]
    position += 1
    value, shift = byte & 0x7F, 7
    while byte & 0x80:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    if value >> 64:  # more than a long holds: not Avro (fastavro would wrap it around)
        raise ValueError(f"a varint of more than 64 bits at {position}")
    return (value >> 1) ^ -(value & 1), position


def read_bytes(data: bytes, position: int) -> tuple[bytes, int]:
    size, position = read_long(data, position)
    end = position + size
    if size < 0 or end > len(data):
        raise EOFError(f"expected {size} bytes at {position}, {len(data) - position} left")
    return data[position:end], end


def read_string(data: bytes, position: int) -> tuple[str, int]:
    raw, position = read_bytes(data, position)
    return raw.decode(), position


def read_fixed(data: bytes, position: int, size: int) -> tuple[bytes, int]:
    end = position + size
    if end > len(data):
        raise EOFError(f"expected {size} bytes at {position}, {len(data) - position} left")
    return data[position:end], end


_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


def read_float(data: bytes, position: int) -> tuple[float, int]:
    return _FLOAT.unpack_from(data, position)[0], position + 4


def read_double(data: bytes, position: int) -> tuple[float, int]:
    return _DOUBLE.unpack_from(data, position)[0], position + 8


def write_float(value: float) -> bytes:
    return _FLOAT.pack(value)


def write_double(value: float) -> bytes:
    return _DOUBLE.pack(value)


# --- what both compilers share ---------------------------------------------------------------------


class _Compiler:
    """Generates functions, one per named record type, and the constants they use (as literals)."""

    prefix = "_f_"
    constant_prefix = "_c"

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.functions: dict[str, str] = {}  # full name -> generated function's name
        self.sources: list[str] = []
        self.constants: dict[str, str] = {}  # name -> its value as Python source
        self._vars = 0
        self._locals: list[str] = []  # the variables of the function being generated, to declare

    def entry(self, name: str) -> str | None:
        """The function of the record ``name``; None, and nothing generated, for a shape not handled."""
        saved = dict(self.functions), list(self.sources), dict(self.constants)
        try:
            return self.function_for(name)
        except Unsupported:
            self.functions, self.sources, self.constants = saved
            return None

    def function_for(self, name: str) -> str:
        """The generated function of the named record ``name`` (generated on first use)."""
        if name not in self.functions:
            function = self.prefix + re.sub(r"\W", "_", name)
            self.functions[name] = function
            outer, self._locals = self._locals, []
            try:
                lines = self.record_function(function, self.named[name])
                declarations = [f"    {var}: Any" for var in self._locals]
            finally:
                self._locals = outer
            self.sources.append("\n".join([lines[0], *declarations, *lines[1:]]))
        return self.functions[name]

    def record_function(self, function: str, schema: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    def resolve(self, schema: Any) -> Any:
        """A named type's definition; any other schema as it is."""
        return self.named[schema] if isinstance(schema, str) and schema in self.named else schema

    def kind(self, schema: Any) -> str:
        resolved = self.resolve(schema)
        if isinstance(resolved, list):
            return "union"
        return resolved if isinstance(resolved, str) else str(resolved["type"])

    def record_names(self, branches: list[Any]) -> list[str]:
        """The full names of a union's record branches, when every branch is a record."""
        if not all(self.kind(branch) == "record" for branch in branches):
            raise Unsupported(f"a union of {branches!r}: only null-or-one-type and unions of records")
        return [str(self.resolve(branch)["name"]) for branch in branches]

    def constant(self, literal: str) -> str:
        name = f"{self.constant_prefix}{len(self.constants)}"
        self.constants[name] = literal
        return name

    def var(self, declared: bool = True) -> str:
        """A new local; ``declared`` ones are declared ``Any`` (mypyc infers the others' types)."""
        self._vars += 1
        name = f"v{self._vars}"
        if declared:
            self._locals.append(name)
        return name


def _optional(branches: list[Any]) -> tuple[int, int, Any] | None:
    """A null-or-one-type union as (the null's index, the other's index, the other); else None."""
    others = [branch for branch in branches if branch != "null"]
    if "null" not in branches or len(others) != 1:
        return None
    return branches.index("null"), branches.index(others[0]), others[0]


def _pad(indent: int) -> str:
    return "    " * indent


# --- writers ---------------------------------------------------------------------------------------

_WRITE_PRIMITIVE = {
    "int": "a.append(_wlong({v}))",
    "long": "a.append(_wlong({v}))",
    "string": "a.append(_wstring({v}))",
    "bytes": "a.append(_wbytes({v}))",
    "boolean": 'a.append(b"\\x01" if {v} else b"\\x00")',
    "float": "a.append(_wfloat({v}))",
    "double": "a.append(_wdouble({v}))",
    "null": "",
}
_PLAIN_DEFAULTS = (type(None), bool, int, str)


class _WriterCompiler(_Compiler):
    prefix = "_w_"
    constant_prefix = "_cw"

    def record_function(self, function: str, schema: Mapping[str, Any]) -> list[str]:
        lines = [f"def {function}(r: dict[str, Any], a: list[bytes]) -> None:"]
        for field in schema["fields"]:
            key, var = repr(field["name"]), self.var()
            default = field.get("default", ...)
            if isinstance(default, _PLAIN_DEFAULTS):
                value = f"r.get({key}, {default!r})"
            elif default in ([], {}):
                value = f"r.get({key}, ())"
            else:
                value = f"r[{key}]"
            lines += [f"    {var} = {value}", *self.value(field["type"], var, 1)]
        return [*lines, "    pass"]

    def value(self, schema: Any, v: str, indent: int) -> list[str]:
        pad, kind, resolved = _pad(indent), self.kind(schema), self.resolve(schema)
        if kind in _WRITE_PRIMITIVE:
            line = _WRITE_PRIMITIVE[kind].format(v=v)
            return [pad + line] if line else []
        if kind == "union":
            return self.union(resolved, v, indent)
        if kind == "record":
            return [f"{pad}{self.function_for(resolved['name'])}({v}, a)"]
        if kind == "enum":
            table = self.constant(
                repr({symbol: write_long(i) for i, symbol in enumerate(resolved["symbols"])})
            )
            return [f"{pad}a.append({table}[{v}])"]
        if kind == "fixed":
            return [f"{pad}a.append({v})"]
        if kind in ("array", "map"):
            item = self.var()
            if kind == "array":
                loop, each = f"for {item} in {v}:", []
                items = resolved["items"]
            else:
                key = self.var()
                loop, each = f"for {key}, {item} in {v}.items():", [f"{pad}        a.append(_wstring({key}))"]
                items = resolved["values"]
            return [
                f"{pad}if {v}:",
                f"{pad}    a.append(_wlong(len({v})))",
                f"{pad}    {loop}",
                *each,
                *self.value(items, item, indent + 2),
                f'{pad}a.append(b"\\x00")',
            ]
        raise Unsupported(f"no compiled writer for the Avro type {kind!r}")

    def union(self, branches: list[Any], v: str, indent: int) -> list[str]:
        pad = _pad(indent)
        optional = _optional(branches)
        if optional is not None:
            null_index, other_index, other = optional
            return [
                f"{pad}if {v} is None:",
                f"{pad}    a.append({write_long(null_index)!r})",
                f"{pad}else:",
                f"{pad}    a.append({write_long(other_index)!r})",
                *self.value(other, v, indent + 1),
            ]
        names = self.record_names(branches)
        branches_of = [(name, write_long(i), self.function_for(name)) for i, name in enumerate(names)]
        table = self.constant(
            "{" + ", ".join(f"{name!r}: ({tag!r}, {fn})" for name, tag, fn in branches_of) + "}"
        )
        name, record, index, function = self.var(), self.var(), self.var(), self.var()
        return [
            f"{pad}{name}, {record} = {v}",
            f"{pad}{index}, {function} = {table}[{name}]",
            f"{pad}a.append({index})",
            f"{pad}{function}({record}, a)",
        ]


# --- readers ---------------------------------------------------------------------------------------

_READ_PRIMITIVE = {
    "string": "{v}, p = _rstring(d, p)",
    "bytes": "{v}, p = _rbytes(d, p)",
    "float": "{v}, p = _rfloat(d, p)",
    "double": "{v}, p = _rdouble(d, p)",
    "null": "{v} = None",
}


class _ReaderCompiler(_Compiler):
    prefix = "_r_"
    constant_prefix = "_cr"

    def record_function(self, function: str, schema: Mapping[str, Any]) -> list[str]:
        lines = [f"def {function}(d: bytes, p: int) -> tuple[dict[str, Any], int]:"]
        fields = []
        for field in schema["fields"]:
            var = self.var()
            fields.append(f"{field['name']!r}: {var}")
            lines += self.value(field["type"], var, 1)
        return [*lines, f"    return {{{', '.join(fields)}}}, p"]

    def value(self, schema: Any, v: str, indent: int) -> list[str]:
        pad, kind, resolved = _pad(indent), self.kind(schema), self.resolve(schema)
        if kind in ("int", "long"):
            # One byte is the common case (small numbers, lengths, indexes): no call for it.
            byte = self.var(declared=False)  # an int: mypyc keeps it unboxed
            return [
                f"{pad}{byte} = d[p]",
                f"{pad}if {byte} < 128:",
                f"{pad}    {v} = ({byte} >> 1) ^ -({byte} & 1)",
                f"{pad}    p += 1",
                f"{pad}else:",
                f"{pad}    {v}, p = _rlong(d, p)",
            ]
        if kind == "boolean":
            return [f"{pad}{v} = d[p] != 0", f"{pad}p += 1"]
        if kind in _READ_PRIMITIVE:
            return [pad + _READ_PRIMITIVE[kind].format(v=v)]
        if kind == "union":
            return self.union(resolved, v, indent)
        if kind == "record":
            return [f"{pad}{v}, p = {self.function_for(resolved['name'])}(d, p)"]
        if kind == "enum":
            index = self.var()
            table = self.constant(repr(dict(enumerate(resolved["symbols"]))))
            return [*self.value("long", index, indent), f"{pad}{v} = {table}[{index}]"]
        if kind == "fixed":
            return [f"{pad}{v}, p = _rfixed(d, p, {resolved['size']})"]
        if kind in ("array", "map"):
            return self.blocks(kind, resolved, v, indent)
        raise Unsupported(f"no compiled reader for the Avro type {kind!r}")

    def blocks(self, kind: str, schema: Mapping[str, Any], v: str, indent: int) -> list[str]:
        """An array or map: blocks of items, each block its count first (negative: then its size)."""
        pad, count, item = _pad(indent), self.var(), self.var()
        if kind == "array":
            empty, read_item, store = (
                "[]",
                self.value(schema["items"], item, indent + 2),
                f"{v}.append({item})",
            )
        else:
            key = self.var()
            empty, store = "{}", f"{v}[{key}] = {item}"
            read_item = [
                f"{pad}        {key}, p = _rstring(d, p)",
                *self.value(schema["values"], item, indent + 2),
            ]
        return [
            f"{pad}{v} = {empty}",
            f"{pad}{count}, p = _rlong(d, p)",
            f"{pad}while {count}:",
            f"{pad}    if {count} < 0:",
            f"{pad}        {count} = -{count}",
            f"{pad}        _, p = _rlong(d, p)",
            f"{pad}    for _ in range({count}):",
            *read_item,
            f"{pad}        {store}",
            f"{pad}    {count}, p = _rlong(d, p)",
        ]

    def union(self, branches: list[Any], v: str, indent: int) -> list[str]:
        pad, index = _pad(indent), self.var()
        lines = self.value("long", index, indent)
        optional = _optional(branches)
        if optional is not None:
            null_index, other_index, other = optional
            # As fastavro with return_record_name_override: the value itself, a record too.
            return [
                *lines,
                f"{pad}if {index} == {null_index}:",
                f"{pad}    {v} = None",
                f"{pad}elif {index} == {other_index}:",
                *self.value(other, v, indent + 1),
                f"{pad}else:",
                f"{pad}    raise ValueError(f'union index {{{index}}} out of range')",
            ]
        names = self.record_names(branches)
        branches_of = [(i, name, self.function_for(name)) for i, name in enumerate(names)]
        table = self.constant("{" + ", ".join(f"{i}: ({name!r}, {fn})" for i, name, fn in branches_of) + "}")
        name, record, function = self.var(), self.var(), self.var()
        # As fastavro with return_record_name: a (full name, record) pair.
        return [
            *lines,
            f"{pad}{name}, {function} = {table}[{index}]",
            f"{pad}{record}, p = {function}(d, p)",
            f"{pad}{v} = ({name}, {record})",
        ]


# --- the module ------------------------------------------------------------------------------------

_MODULE_HEADER = """\"\"\"Avro writers and readers generated by schemas.compiled: do not edit.\"\"\"

from __future__ import annotations

from typing import Any, Final

from schemas.compiled import (
    read_bytes as _rbytes,
    read_double as _rdouble,
    read_fixed as _rfixed,
    read_float as _rfloat,
    read_long as _rlong,
    read_string as _rstring,
    write_bytes as _wbytes,
    write_double as _wdouble,
    write_float as _wfloat,
    write_long as _wlong,
    write_string as _wstring,
)"""


def entry_names(name: str) -> tuple[str, str]:
    """The names of the generated module's writer and reader of the record ``name``."""
    identifier = re.sub(r"\W", "_", name)
    return f"write_{identifier}", f"read_{identifier}"


def generate(records: Mapping[str, Mapping[str, Any]]) -> str:
    """One Python module with a writer and a reader (see :func:`entry_names`) for every record.

    ``records`` maps a name to a parsed record schema (fastavro's: its named types under
    ``"__named_schemas"``). A record of a shape the compilers do not handle has no function for
    that direction. The text is a function of the schemas alone, so its hash identifies them;
    it runs as it is (:func:`load`) or compiled by mypyc (``runtime.native``).
    """
    named: dict[str, Any] = {}
    for schema in records.values():
        named.update(schema.get("__named_schemas", {}))
        named[schema["name"]] = schema
    writers, readers = _WriterCompiler(named), _ReaderCompiler(named)
    entries = []
    for name, schema in sorted(records.items()):
        write_name, read_name = entry_names(name)
        writer, reader = writers.entry(schema["name"]), readers.entry(schema["name"])
        if writer is not None:
            entries.append(
                f"def {write_name}(r: Any) -> bytes:\n    a: list[bytes] = []\n    {writer}(r, a)\n"
                "    return b''.join(a)"
            )
        if reader is not None:
            entries.append(
                f"def {read_name}(d: bytes) -> tuple[dict[str, Any], int]:\n    return {reader}(d, 0)"
            )
    constants = [
        f"{constant}: Final = {literal}"
        for compiler in (writers, readers)
        for constant, literal in compiler.constants.items()
    ]
    parts = [_MODULE_HEADER, *writers.sources, *readers.sources, *entries, "\n".join(constants)]
    return "\n\n\n".join(parts) + "\n"


def load(source: str, filename: str = "<avro codecs>") -> dict[str, Any]:
    """Run a module generated by :func:`generate`; its namespace."""
    scope: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), scope)
    return scope


def _single(schema: Mapping[str, Any], named: Mapping[str, Any], direction: str) -> Any:
    """The writer or reader of one record schema; Unsupported when its shape is not handled."""
    compiler = _WriterCompiler if direction == "write" else _ReaderCompiler
    compiler({**named, schema["name"]: schema}).function_for(schema["name"])  # raises Unsupported
    scope = load(
        generate({"record": {**schema, "__named_schemas": named}}), f"<avro codec of {schema['name']}>"
    )
    return scope[f"{direction}_record"]


def compile_writer(schema: Mapping[str, Any], named: Mapping[str, Any]) -> Writer:
    """A function writing records of the parsed record ``schema`` (named types looked up in ``named``)."""
    writer: Writer = _single(schema, named, "write")
    return writer


def compile_reader(schema: Mapping[str, Any], named: Mapping[str, Any]) -> Reader:
    """A function reading a record of the parsed record ``schema``: ``(record, end position)``.

    It raises IndexError, EOFError, KeyError, ValueError or UnicodeDecodeError on bytes that are
    not such a record; bytes left over after the record are the caller's to refuse.
    """
    reader: Reader = _single(schema, named, "read")
    return reader
