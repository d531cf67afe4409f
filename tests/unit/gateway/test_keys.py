"""API keys: the key document (a file and/or the EXCHANGE_GATEWAY_KEYS text) and what it may hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import UserError
from runtime.keys import MIN_SECRET_CHARS, ApiKey, Scope, load_keys, parse_keys

SECRET = "a-long-random-secret-0001"


def _entry(**changes: Any) -> dict[str, Any]:
    """A valid key entry with ``changes`` applied."""
    return {"id": "demo", "secret": SECRET, "account": "demo-account", "scopes": ["read", "trade"], **changes}


def _document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(entries)}


def _key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _yaml_key(key_id: str) -> str:
    return f"keys:\n  - id: {key_id}\n    secret: {SECRET}\n    account: acct\n    scopes: [read]\n"


# --- parse_keys ----------------------------------------------------------------------------------


def test_a_valid_document_gives_each_key_by_id() -> None:
    keys = parse_keys(_document(_entry()), "keys.yaml")

    assert keys == {
        "demo": ApiKey("demo", SECRET, "demo-account", frozenset({Scope.READ, Scope.TRADE})),
    }


def test_a_document_without_a_keys_list_is_refused() -> None:
    with pytest.raises(UserError, match=r"^keys\.yaml: expected a mapping with a 'keys' list$"):
        parse_keys({"key": [_entry()]}, "keys.yaml")


@pytest.mark.parametrize("field", ["id", "secret", "account", "scopes"])
def test_a_key_missing_a_field_is_refused_naming_the_entry(field: str) -> None:
    incomplete = _entry(id="second")
    del incomplete[field]
    document = _document(_entry(id="first"), incomplete)

    with pytest.raises(UserError, match=r"^keys\.yaml: keys\[1\]: expected exactly the fields"):
        parse_keys(document, "keys.yaml")


def test_a_key_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(
        UserError, match=r"keys\[0\]: expected exactly the fields id, secret, account, scopes"
    ):
        parse_keys(_document(_entry(comment="for the bot")), "keys.yaml")


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(UserError, match=r"keys\[0\]: scopes must be a non-empty list of admin, read, trade"):
        parse_keys(_document(_entry(scopes=["read", "withdraw"])), "keys.yaml")


def test_an_empty_scope_list_is_refused() -> None:
    with pytest.raises(UserError, match=r"keys\[0\]: scopes must be a non-empty list"):
        parse_keys(_document(_entry(scopes=[])), "keys.yaml")


def test_a_scope_that_is_not_a_string_is_refused_as_a_user_error() -> None:
    # A YAML slip such as `scopes: [[read, trade]]` must be a one-line UserError, not a crash.
    with pytest.raises(UserError, match=r"keys\[0\]: scopes must be a non-empty list"):
        parse_keys(_document(_entry(scopes=[["read", "trade"]])), "keys.yaml")


def test_a_secret_shorter_than_the_minimum_is_refused() -> None:
    short = "s" * (MIN_SECRET_CHARS - 1)

    with pytest.raises(
        UserError, match=rf"keys\[0\]: secret must be a string of at least {MIN_SECRET_CHARS}"
    ):
        parse_keys(_document(_entry(secret=short)), "keys.yaml")


def test_a_secret_of_exactly_the_minimum_length_is_accepted() -> None:
    secret = "s" * MIN_SECRET_CHARS

    keys = parse_keys(_document(_entry(secret=secret)), "keys.yaml")

    assert keys["demo"].secret == secret


def test_a_key_id_with_characters_outside_the_allowed_set_is_refused() -> None:
    with pytest.raises(UserError, match=r"keys\[0\]: id must be 1-64 letters"):
        parse_keys(_document(_entry(id="demo key")), "keys.yaml")


def test_a_duplicate_key_id_is_refused() -> None:
    document = _document(_entry(id="twin", account="a"), _entry(id="twin", account="b"))

    with pytest.raises(UserError, match=r"^keys\.yaml: duplicate key id 'twin'$"):
        parse_keys(document, "keys.yaml")


# --- load_keys -----------------------------------------------------------------------------------


def test_load_keys_reads_a_yaml_file(tmp_path: Path) -> None:
    path = _key_file(tmp_path, _yaml_key("from-file"))

    keys = load_keys(path, "")

    assert keys == {"from-file": ApiKey("from-file", SECRET, "acct", frozenset({Scope.READ}))}


def test_load_keys_reads_json_text() -> None:
    entry = {"id": "from-env", "secret": SECRET, "account": "acct", "scopes": ["admin"]}
    text = json.dumps({"keys": [entry]})

    keys = load_keys(None, text)

    assert keys == {"from-env": ApiKey("from-env", SECRET, "acct", frozenset({Scope.ADMIN}))}


def test_load_keys_combines_the_file_and_the_text(tmp_path: Path) -> None:
    path = _key_file(tmp_path, _yaml_key("from-file"))

    keys = load_keys(path, _yaml_key("from-env"))

    assert sorted(keys) == ["from-env", "from-file"]


def test_load_keys_refuses_a_key_id_in_both_the_file_and_the_text(tmp_path: Path) -> None:
    path = _key_file(tmp_path, _yaml_key("shared"))

    with pytest.raises(UserError, match=r"^EXCHANGE_GATEWAY_KEYS: key id 'shared' is defined twice$"):
        load_keys(path, _yaml_key("shared"))


def test_load_keys_without_a_file_or_text_has_no_keys() -> None:
    assert load_keys(None, "  \n") == {}


def test_load_keys_names_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(UserError, match=rf"^API keys file {missing} cannot be read"):
        load_keys(missing, "")


def test_load_keys_names_the_source_of_malformed_yaml() -> None:
    with pytest.raises(UserError, match=r"^EXCHANGE_GATEWAY_KEYS: malformed YAML$"):
        load_keys(None, "keys: [unclosed")


def test_load_keys_names_the_file_of_an_invalid_key(tmp_path: Path) -> None:
    path = _key_file(tmp_path, _yaml_key("bad key"))

    with pytest.raises(UserError, match=rf"^{path}: keys\[0\]: id must be"):
        load_keys(path, "")
