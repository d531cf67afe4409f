"""Avro codec for every Kafka record: schemaless fastavro bytes plus headers naming schema and version.

``encode("NewOrder", record)`` returns the value bytes and the Kafka headers
``[("schema", b"NewOrder"), ("schema-version", b"1")]``; ``decode(value, headers)`` returns
``("NewOrder", record)``. A consumer refuses what it cannot read with a one-line
:class:`DecodeError` carrying a reason code (the matcher moves such a command to the
dead-letter topic): a missing header, an unknown schema, an unknown or incompatible version,
or bytes that do not decode.

Every ``*.avsc`` file here except ``common.avsc`` is one Kafka record, named like its file and
carrying a ``"version"``; ``common.avsc`` holds the named types they share. All are parsed once.

How versions evolve
-------------------
``released.json`` records, for every record and every version ever released, the Avro parsing
canonical form of its schema: exactly what a writer of that version put on the wire. Writers
always write the current version; readers decode any released version, resolving an older
writer's schema to the current one by Avro's rules (so a new field needs a default, and enum
symbols are only appended). A version newer than the reader's is refused: deploy consumers
before producers. The codec refuses to load when a ``.avsc`` no longer matches what was
released under its version, so a wire change cannot ship without a version bump. To change a
record: edit it, raise its ``"version"``, then run ``python3 -m schemas.codec release``.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import to_parsing_canonical_form

from runtime import native
from runtime.errors import UserError
from schemas.compiled import Reader, Writer, entry_names, generate, load

SCHEMA_DIR = Path(__file__).parent
GENERATED_MODULE = "_exchange_avro"  # the generated codec module's name when compiled
SHARED_TYPES_FILE = "common.avsc"
RELEASED_FILE = "released.json"
SCHEMA_HEADER = "schema"
VERSION_HEADER = "schema-version"

_T = TypeVar("_T")
HeaderValue = bytes | str | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None


class CodecError(ValueError):
    """A record the codec refuses; ``reason`` is an UPPER_SNAKE code, the message one line."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DecodeError(CodecError):
    """Bytes and headers a consumer cannot read (reasons: MISSING_HEADER, MALFORMED_HEADER,
    UNKNOWN_SCHEMA, UNKNOWN_VERSION, INCOMPATIBLE_VERSION, UNDECODABLE)."""


class EncodeError(CodecError):
    """A record that does not fit its schema, a bug in the producer (UNKNOWN_SCHEMA, INVALID_RECORD)."""


class SchemaError(UserError):
    """The ``.avsc`` files or ``released.json`` are inconsistent; raised when the codec loads."""


@dataclass(frozen=True, slots=True)
class _Record:
    """One Kafka record type: its current schema and the writer schemas of its older versions."""

    name: str
    version: int
    schema: dict[str, Any]  # parsed by fastavro
    headers: tuple[tuple[str, bytes], ...]
    check_scalars: Callable[[Any], None]
    older_writers: Mapping[int, dict[str, Any]]  # version -> parsed writer schema
    write: Writer | None  # the compiled writer of the current version (None: fastavro's only)
    read: Reader | None  # the compiled reader of the current version (None: fastavro's only)


class Codec:
    """Encodes and decodes the records of a schema directory; every schema is parsed here, once."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        """Load and check every schema of ``schema_dir`` and the versions released before."""
        released = _read_released(schema_dir)
        parsed = _parse_records(schema_dir)
        # The compiled writers and readers: one generated module for all records (schemas.compiled).
        self.generated_source = generate({name: schema for name, (_, schema) in parsed.items()})
        functions = _generated_functions(self.generated_source)
        self._records: dict[str, _Record] = {}
        for name, (version, schema) in parsed.items():
            write_name, read_name = entry_names(name)
            versions = released.get(name, {})
            _check_released(name, version, schema, versions)
            self._records[name] = _Record(
                name=name,
                version=version,
                schema=schema,
                headers=((SCHEMA_HEADER, name.encode()), (VERSION_HEADER, str(version).encode())),
                # fastavro keeps the named types a parsed schema refers to under this key.
                check_scalars=_scalar_check(schema, schema["__named_schemas"], name) or _nothing_to_check,
                older_writers={
                    v: _parse(schema_dir / RELEASED_FILE, json.loads(form), {})
                    for v, form in versions.items()
                    if v < version
                },
                write=functions.get(write_name),
                read=functions.get(read_name),
            )

    @property
    def names(self) -> tuple[str, ...]:
        """The record names this codec knows, sorted."""
        return tuple(sorted(self._records))

    def version(self, name: str) -> int:
        """The version of ``name`` that ``encode`` writes."""
        return self._record(name, EncodeError).version

    def schema(self, name: str) -> dict[str, Any]:
        """The current schema of ``name`` as JSON data, shared named types written out inline."""
        return _inline(self._record(name, EncodeError).schema)

    def encode(
        self, name: str, record: Mapping[str, Any], *, checked: bool = True
    ) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The value bytes of ``record`` and the headers naming its schema and version.

        ``checked=False`` is for records our own code builds (the matcher's outputs, whose numbers
        are the core's ticks and lots): it skips the exact-integer check of every number and writes
        with the schema's compiled writer (``schemas.compiled``), which gives the same bytes as
        fastavro's in about half the time but does not validate what it writes.
        """
        spec = self._record(name, EncodeError)
        if not checked and spec.write is not None:
            try:
                plain = record if isinstance(record, dict) else dict(record)  # compiled, it takes a dict
                return spec.write(plain), list(spec.headers)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise EncodeError("INVALID_RECORD", f"{name} v{spec.version}: {_one_line(exc)}") from exc
        buffer = io.BytesIO()
        try:
            if checked:
                spec.check_scalars(record)
            # strict_allow_default: a misspelt optional field is an error, not silently dropped.
            schemaless_writer(buffer, spec.schema, record, strict_allow_default=True)
        except Exception as exc:  # fastavro raises several types; all mean "this record does not fit"
            raise EncodeError("INVALID_RECORD", f"{name} v{spec.version}: {_one_line(exc)}") from exc
        return buffer.getvalue(), list(spec.headers)

    def trusted_writer(self, name: str) -> tuple[Writer, list[tuple[str, bytes]]]:
        """``encode(name, record, checked=False)`` as a function of the record, and the headers.

        For a loop that writes many records of one type. The headers list is the same object for
        every record: hand it on, never change it.
        """
        spec = self._record(name, EncodeError)
        if spec.write is not None:
            return spec.write, list(spec.headers)
        return functools.partial(self._encode_value, name), list(spec.headers)

    def _encode_value(self, name: str, record: Mapping[str, Any]) -> bytes:
        return self.encode(name, record, checked=False)[0]

    def decode(self, value: bytes | None, headers: Headers) -> tuple[str, dict[str, Any]]:
        """The record name and the record of a Kafka value, read with the writer's schema version."""
        name, version = _schema_headers(headers)
        spec = self._record(name, DecodeError)
        if version == spec.version:
            writer, reader = spec.schema, None
        elif version in spec.older_writers:
            writer, reader = spec.older_writers[version], spec.schema
        else:
            known = ", ".join(str(v) for v in sorted({*spec.older_writers, spec.version}))
            advice = "upgrade this consumer" if version > spec.version else "that version is no longer read"
            raise DecodeError(
                "UNKNOWN_VERSION", f"{name} version {version} is unknown here (known: {known}); {advice}"
            )
        if value is None:
            raise DecodeError("UNDECODABLE", f"{name} v{version}: the value is empty (a tombstone)")
        if reader is None and spec.read is not None:
            return name, _read_compiled(name, version, bytes(value), spec.read)
        return name, _read(name, version, bytes(value), writer, reader)

    def _record(self, name: str, error: type[CodecError]) -> _Record:
        try:
            return self._records[name]
        except KeyError:
            raise error(
                "UNKNOWN_SCHEMA", f"unknown schema {name!r} (known: {', '.join(self.names)})"
            ) from None


def _generated_functions(source: str) -> Mapping[str, Any]:
    """The functions of the generated codec module: compiled by mypyc when built from this very
    source (see runtime.native), else run by the interpreter."""
    module = native.generated_module(GENERATED_MODULE, source)
    return vars(module) if module is not None else load(source)


def generated_source() -> str:
    """The codec module generated from the schemas here (what ``exchange native build`` compiles)."""
    return default_codec().generated_source


def _read_compiled(name: str, version: int, value: bytes, read: Reader) -> dict[str, Any]:
    try:
        record, end = read(value)
    except (IndexError, EOFError, KeyError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise DecodeError(
            "UNDECODABLE", f"{name} v{version}: cannot decode {len(value)} bytes: {_one_line(exc)}"
        ) from None
    _refuse_left_over(name, version, len(value) - end)
    return record


def _refuse_left_over(name: str, version: int, extra: int) -> None:
    if extra:
        raise DecodeError("UNDECODABLE", f"{name} v{version}: {extra} bytes left over after the record")


def _read(name: str, version: int, value: bytes, writer: Any, reader: Any) -> dict[str, Any]:
    stream = io.BytesIO(value)
    try:
        record = schemaless_reader(
            stream, writer, reader, return_record_name=True, return_record_name_override=True
        )
    except Exception as exc:  # arbitrary bytes from the wire can fail in many ways; all are "undecodable"
        reason = "INCOMPATIBLE_VERSION" if isinstance(exc, SchemaResolutionError) else "UNDECODABLE"
        raise DecodeError(
            reason, f"{name} v{version}: cannot decode {len(value)} bytes: {_one_line(exc)}"
        ) from None
    _refuse_left_over(name, version, len(value) - stream.tell())
    return cast(dict[str, Any], record)


# --- what fastavro's writer lets through ------------------------------------------------------------

_SCALAR_TYPES: dict[str, tuple[type[int], int, int]] = {
    "int": (int, -(2**31), 2**31 - 1),
    "long": (int, -(2**63), 2**63 - 1),
    "boolean": (bool, 0, 1),
}


def _nothing_to_check(value: Any) -> None:
    pass


def _scalar_check(
    schema: Any, named: Mapping[str, Any], path: str, visiting: frozenset[str] = frozenset()
) -> Callable[[Any], None] | None:
    """A check that every int, long and boolean in a value has exactly that type (and range) and every
    enum one of its symbols, or None if there are none outside unions of scalars (fastavro checks those).

    fastavro's writer would silently write 1.5 or Decimal("1.5") in a long field as 1, True as 1, and
    2**40 in an int field; fastavro's own validation catches these but divides the encoding speed by
    two to four. This check is built once per schema and costs one call per field it checks.
    """
    if isinstance(schema, str):
        if schema in _SCALAR_TYPES:
            return _scalar(schema, path)
        # A type that contains itself is checked down to its first repetition only.
        return _scalar_check(named[schema], named, path, visiting) if schema in named else None
    if isinstance(schema, list):
        return _union_check(schema, named, path, visiting)
    if schema["type"] == "enum":
        return _enum(frozenset(schema["symbols"]), path)
    if schema["type"] == "array":
        return _array_check(_scalar_check(schema["items"], named, f"{path}[]", visiting))
    if schema["type"] != "record" or schema["name"] in visiting:
        return None
    inside = visiting | {schema["name"]}
    fields = [
        (field["name"], check)
        for field in schema["fields"]
        if (check := _scalar_check(field["type"], named, f"{path}.{field['name']}", inside)) is not None
    ]

    def check_record(record: Any) -> None:
        if isinstance(record, Mapping):  # anything else fastavro's writer refuses itself
            for name, check in fields:
                if name in record:
                    check(record[name])

    return check_record if fields else None


def _scalar(kind: str, path: str) -> Callable[[Any], None]:
    exact_type, low, high = _SCALAR_TYPES[kind]

    def check(value: Any) -> None:
        if type(value) is not exact_type or not low <= value <= high:
            raise ValueError(f"{path} is {value!r} ({type(value).__name__}), not a {kind}")

    return check


def _enum(symbols: frozenset[str], path: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in symbols:
            raise ValueError(f"{path} is {value!r}, not one of {', '.join(sorted(symbols))}")

    return check


def _array_check(item: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    if item is None:
        return None

    def check_array(values: Any) -> None:
        for value in values:
            item(value)

    return check_array


def _union_check(
    branches: list[Any], named: Mapping[str, Any], path: str, visiting: frozenset[str]
) -> Callable[[Any], None] | None:
    """fastavro checks a plain value against every branch itself, but trusts a (name, record) pair."""
    records = [named[b] if isinstance(b, str) and b in named else b for b in branches]
    by_name = {
        record["name"]: check
        for record in records
        if isinstance(record, dict) and record["type"] == "record"
        if (check := _scalar_check(record, named, f"{path}<{record['name']}>", visiting)) is not None
    }

    def check_union(value: Any) -> None:
        if isinstance(value, tuple) and len(value) == 2 and value[0] in by_name:
            by_name[value[0]](value[1])

    return check_union if by_name else None


def _schema_headers(headers: Headers) -> tuple[str, int]:
    """The schema name and version a record's headers declare."""
    if isinstance(headers, list):
        # Records of one producer carry the same few header lists: remember what they said.
        key = tuple(headers)
        known = _KNOWN_HEADERS.get(key)
        if known is None:
            known = _parse_schema_headers(headers)
            if len(_KNOWN_HEADERS) < _KNOWN_HEADERS_MAX:
                _KNOWN_HEADERS[key] = known
        return known
    return _parse_schema_headers(headers)


_KNOWN_HEADERS: dict[tuple[tuple[str, HeaderValue], ...], tuple[str, int]] = {}
_KNOWN_HEADERS_MAX = 1024


def _parse_schema_headers(headers: Headers) -> tuple[str, int]:
    found: dict[str, HeaderValue] = {}
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    for key, value in items:
        if key in (SCHEMA_HEADER, VERSION_HEADER):
            found[key] = value
    name, version = (_header_text(found, header) for header in (SCHEMA_HEADER, VERSION_HEADER))
    if not version.isdigit():
        raise DecodeError(
            "MALFORMED_HEADER", f"header {VERSION_HEADER!r} is {version!r}, not a version number"
        )
    return name, int(version)


def _header_text(found: Mapping[str, HeaderValue], header: str) -> str:
    if found.get(header) is None:
        raise DecodeError(
            "MISSING_HEADER", f"no {header!r} header: cannot tell which schema wrote this record"
        )
    value = found[header]
    try:
        return value.decode("ascii") if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError:
        raise DecodeError("MALFORMED_HEADER", f"header {header!r} is not ASCII: {value!r}") from None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"  # fastavro may quote a whole schema


# --- loading -----------------------------------------------------------------------------------


def _parse_records(schema_dir: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """Parse the shared types, then every record file: name -> (version, parsed schema)."""
    named: dict[str, Any] = {}
    defined_in: dict[str, Path] = {}

    def parse(path: Path, data: Any) -> dict[str, Any]:
        parsed = _parse(path, data, named)
        # fastavro lets a later definition silently replace an earlier one of the same name.
        for full_name in _definitions(data):
            if full_name in defined_in:
                raise SchemaError(f"{path}: defines {full_name} again (see {defined_in[full_name].name})")
            defined_in[full_name] = path
        return parsed

    shared = schema_dir / SHARED_TYPES_FILE
    if shared.exists():
        parse(shared, _read_json(shared))
    records: dict[str, tuple[int, dict[str, Any]]] = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        if path.name == SHARED_TYPES_FILE:
            continue
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("type") != "record" or data.get("name") != path.stem:
            raise SchemaError(f"{path}: must hold one record named {path.stem!r}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SchemaError(f'{path}: needs "version": a whole number >= 1, got {version!r}')
        records[path.stem] = (version, parse(path, data))
    if not records:
        raise SchemaError(f"{schema_dir}: no record schemas (*.avsc)")
    return records


def _definitions(node: Any, namespace: str = "") -> Iterator[str]:
    """The full names of the named types a (valid) JSON schema defines, by Avro's namespace rules."""
    if isinstance(node, list):
        for branch in node:
            yield from _definitions(branch, namespace)
    if not isinstance(node, dict):
        return
    kind = node["type"]
    if kind in ("record", "error", "enum", "fixed"):
        name, namespace = node["name"], node.get("namespace", namespace)
        full_name = name if "." in name or not namespace else f"{namespace}.{name}"
        yield full_name
        namespace = full_name.rpartition(".")[0]
    for field in node.get("fields", ()):
        yield from _definitions(field["type"], namespace)
    for nested in (kind, node.get("items"), node.get("values")):
        yield from _definitions(nested, namespace)


def _parse(path: Path, data: Any, named: dict[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of ``data``, its named types added to ``named``."""
    try:
        parsed = parse_schema(data, named)
    except Exception as exc:  # fastavro's parse errors have no common base class
        raise SchemaError(f"{path}: invalid Avro schema: {_one_line(exc)}") from None
    return cast(dict[str, Any], parsed)  # a list only for common.avsc, whose result is not used


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{path}: cannot read: {_one_line(exc)}") from None


def _read_released(schema_dir: Path) -> dict[str, dict[int, str]]:
    """released.json: record name -> version -> parsing canonical form."""
    path = schema_dir / RELEASED_FILE
    if not path.exists():
        return {}
    data = _read_json(path)
    try:
        return {name: {int(v): str(form) for v, form in versions.items()} for name, versions in data.items()}
    except (AttributeError, ValueError):
        raise SchemaError(f"{path}: expected {{record name: {{version: canonical form}}}}") from None


def _check_released(name: str, version: int, schema: dict[str, Any], released: Mapping[int, str]) -> None:
    how = "then run `python3 -m schemas.codec release`"
    form = canonical_form(schema)
    if version not in released:
        raise SchemaError(f"{name} version {version} is not released: {how}")
    if released[version] != form:
        raise SchemaError(
            f"{name}.avsc no longer matches its released version {version}: "
            f'raise its "version" to {max(released) + 1}, {how}'
        )
    if max(released) > version:
        raise SchemaError(f"{name} version {max(released)} was released but {name}.avsc says {version}")


def canonical_form(schema: dict[str, Any]) -> str:
    """Avro's parsing canonical form of a parsed schema: what its writer puts on the wire."""
    return str(to_parsing_canonical_form(_inline(schema)))


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as plain JSON data, each named type defined at its first use, referred to by name after.

    (fastavro's own ``expand_schema`` defines a type again at every use, which is not valid Avro.)
    """
    named: dict[str, Any] = schema.get("__named_schemas", {})
    defined: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(branch) for branch in node]
        if isinstance(node, str):
            if node in named and node not in defined:
                return walk(named[node])
            return node
        node = {key: value for key, value in node.items() if not key.startswith("__")}
        kind = node["type"]
        if kind in ("record", "error", "enum", "fixed"):
            defined.add(node["name"])
        if kind in ("record", "error"):
            node["fields"] = [{**field, "type": walk(field["type"])} for field in node["fields"]]
        elif kind == "array":
            node["items"] = walk(node["items"])
        elif kind == "map":
            node["values"] = walk(node["values"])
        return node

    result: dict[str, Any] = walk(schema)
    return result


# --- releasing a version -------------------------------------------------------------------------


def release(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Record the current version of every record in released.json; returns what was added.

    Refuses to change what a released version means: a changed schema needs a new version.
    """
    released = _read_released(schema_dir)
    added = []
    for name, (version, schema) in _parse_records(schema_dir).items():
        versions = released.setdefault(name, {})
        if versions.get(version, canonical_form(schema)) != canonical_form(schema):
            raise SchemaError(
                f'{name}.avsc changed but version {version} is already released: raise "version"'
            )
        if versions and version < max(versions):
            raise SchemaError(f"{name}.avsc says version {version} but {max(versions)} is already released")
        if version not in versions:
            versions[version] = canonical_form(schema)
            added.append(f"{name} v{version}")
    data = {
        name: {str(v): form for v, form in sorted(versions.items())}
        for name, versions in sorted(released.items())
    }
    (schema_dir / RELEASED_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return added


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``python3 -m schemas.codec`` (``release``)."""
    parser.add_argument("action", choices=["release"], help="record the current schema versions")
    parser.add_argument("--schema-dir", type=Path, default=SCHEMA_DIR)


def run(args: argparse.Namespace) -> int:
    """Release the current schema versions and say which were new."""
    added = release(args.schema_dir)
    print("released: " + ", ".join(added) if added else "nothing new to release")  # noqa: T201 (a command)
    return 0


# --- the shared default codec --------------------------------------------------------------------


@functools.cache
def default_codec() -> Codec:
    """The codec of this package's schemas, loaded on first use."""
    return Codec()


def encode(name: str, record: Mapping[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Encode with the default codec: see :meth:`Codec.encode`."""
    return default_codec().encode(name, record)


def decode(value: bytes | None, headers: Headers) -> tuple[str, dict[str, Any]]:
    """Decode with the default codec: see :meth:`Codec.decode`."""
    return default_codec().decode(value, headers)


if __name__ == "__main__":
    import sys

    _parser = argparse.ArgumentParser(prog="python3 -m schemas.codec", description="schema versions")
    configure(_parser)
    try:
        sys.exit(run(_parser.parse_args()))
    except UserError as _exc:
        sys.exit(f"error: {_exc}")
