"""How schema versions evolve: readers decode every released version; wire changes need a new version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import Codec, DecodeError, SchemaError
from schemas.codec import SCHEMA_DIR, canonical_form, release

SHARED = [{"type": "enum", "name": "Side", "namespace": "exchange", "symbols": ["BUY", "SELL"]}]
FILL_V1: dict[str, Any] = {
    "type": "record",
    "name": "Fill",
    "namespace": "exchange",
    "version": 1,
    "fields": [{"name": "side", "type": "Side"}, {"name": "qty", "type": "long"}],
}
# v2 adds a field with a default: a v2 reader can read what a v1 writer wrote.
FILL_V2 = {
    **FILL_V1,
    "version": 2,
    "fields": [*FILL_V1["fields"], {"name": "fee", "type": "long", "default": 0}],
}


def _write(schema_dir: Path, name: str, schema: Any) -> None:
    (schema_dir / f"{name}.avsc").write_text(json.dumps(schema), encoding="utf-8")


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    """A schema directory with version 1 of `Fill` released."""
    _write(tmp_path, "common", SHARED)
    _write(tmp_path, "Fill", FILL_V1)
    release(tmp_path)
    return tmp_path


def test_a_reader_resolves_an_older_released_version_to_its_own(schema_dir: Path) -> None:
    v1_bytes, v1_headers = Codec(schema_dir).encode("Fill", {"side": "SELL", "qty": 5})
    _write(schema_dir, "Fill", FILL_V2)
    release(schema_dir)

    assert Codec(schema_dir).decode(v1_bytes, v1_headers) == ("Fill", {"side": "SELL", "qty": 5, "fee": 0})


def test_a_writer_writes_the_current_version(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", FILL_V2)
    release(schema_dir)

    _, headers = Codec(schema_dir).encode("Fill", {"side": "BUY", "qty": 1, "fee": 2})

    assert headers == [("schema", b"Fill"), ("schema-version", b"2")]


def test_an_older_reader_refuses_a_newer_version(schema_dir: Path) -> None:
    old_reader = Codec(schema_dir)
    _write(schema_dir, "Fill", FILL_V2)
    release(schema_dir)
    v2_bytes, v2_headers = Codec(schema_dir).encode("Fill", {"side": "BUY", "qty": 1, "fee": 2})

    with pytest.raises(DecodeError) as caught:
        old_reader.decode(v2_bytes, v2_headers)

    assert caught.value.reason == "UNKNOWN_VERSION"
    assert str(caught.value) == "Fill version 2 is unknown here (known: 1); upgrade this consumer"


def test_a_version_that_cannot_be_resolved_is_refused_as_incompatible(schema_dir: Path) -> None:
    v1_bytes, v1_headers = Codec(schema_dir).encode("Fill", {"side": "SELL", "qty": 5})
    without_default = {
        **FILL_V1,
        "version": 2,
        "fields": [*FILL_V1["fields"], {"name": "fee", "type": "long"}],
    }
    _write(schema_dir, "Fill", without_default)
    release(schema_dir)

    with pytest.raises(DecodeError) as caught:
        Codec(schema_dir).decode(v1_bytes, v1_headers)

    assert caught.value.reason == "INCOMPATIBLE_VERSION"
    assert "\n" not in str(caught.value)


def test_the_codec_refuses_to_load_a_changed_schema_under_its_released_version(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", {**FILL_V2, "version": 1})

    with pytest.raises(
        SchemaError, match='no longer matches its released version 1: raise its "version" to 2'
    ):
        Codec(schema_dir)


def test_release_refuses_to_change_a_released_version(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", {**FILL_V2, "version": 1})

    with pytest.raises(SchemaError, match="already released"):
        release(schema_dir)


def test_the_codec_refuses_to_load_an_unreleased_version(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", FILL_V2)

    with pytest.raises(SchemaError, match="Fill version 2 is not released"):
        Codec(schema_dir)


def test_a_documentation_change_needs_no_new_version(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", {**FILL_V1, "doc": "One trade."})

    assert release(schema_dir) == []
    assert Codec(schema_dir).version("Fill") == 1


def test_release_reports_what_it_added(schema_dir: Path) -> None:
    _write(schema_dir, "Fill", FILL_V2)

    assert release(schema_dir) == ["Fill v2"]
    assert release(schema_dir) == []


def test_every_schema_of_the_project_is_released_as_it_is() -> None:
    # Loading checks each current schema against released.json; this names the rule in the suite.
    released = json.loads((SCHEMA_DIR / "released.json").read_text(encoding="utf-8"))
    codec = Codec()

    for name in codec.names:
        assert released[name][str(codec.version(name))] == canonical_form(codec.schema(name))


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("Fill.avsc", "{not json", "Fill.avsc: cannot read"),
        ("Fill.avsc", json.dumps({**FILL_V1, "name": "Trade"}), "must hold one record named 'Fill'"),
        ("Fill.avsc", json.dumps({k: v for k, v in FILL_V1.items() if k != "version"}), 'needs "version"'),
        ("Fill.avsc", json.dumps({**FILL_V1, "version": "1"}), 'needs "version"'),
        (
            "Fill.avsc",
            json.dumps({**FILL_V1, "fields": [{"name": "side", "type": "Sid"}]}),
            "invalid Avro schema",
        ),
        ("common.avsc", json.dumps([*SHARED, *SHARED]), "common.avsc: defines exchange.Side again"),
        (
            "Fill.avsc",
            json.dumps({**FILL_V1, "fields": [{"name": "side", "type": {**SHARED[0], "symbols": ["ASK"]}}]}),
            "Fill.avsc: defines exchange.Side again (see common.avsc)",
        ),
    ],
)
def test_a_broken_schema_file_is_named_in_a_one_line_error(
    schema_dir: Path, file_name: str, content: str, message: str
) -> None:
    (schema_dir / file_name).write_text(content, encoding="utf-8")

    with pytest.raises(SchemaError) as caught:
        Codec(schema_dir)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
