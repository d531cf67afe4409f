"""The store's URL setting: CloudNativePG's plain postgresql:// URL is read with psycopg, and any
other database or driver is refused at start in one line that names the variable, never the password."""

from __future__ import annotations

import pytest

from history.settings import HistorySettings
from runtime.errors import UserError
from runtime.settings import load_settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        # CloudNativePG's app secret, key `uri`: libpq's scheme, a URL-encoded password.
        ("postgresql://app:p%40ss@history-db-rw.exchange:5432/app", "postgresql+psycopg://app:p%40ss@history-db-rw.exchange:5432/app"),
        ("postgres://app:pw@db/app", "postgresql+psycopg://app:pw@db/app"),
        ("postgresql+psycopg://app:pw@db/app", "postgresql+psycopg://app:pw@db/app"),
        ("sqlite:////var/lib/exchange/history.sqlite3", "sqlite:////var/lib/exchange/history.sqlite3"),
    ],
)  # fmt: skip
def test_a_postgresql_url_as_the_operator_writes_it_is_read_with_psycopg(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("EXCHANGE_HISTORY_DB_URL", given)

    assert load_settings(HistorySettings).database_url() == used


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("mysql://root:hunter2secret@db/app", "not 'mysql'"),
        ("postgresql+psycopg2://root:hunter2secret@db/app", "not 'postgresql+psycopg2'"),
        ("hunter2secret", "not a database URL"),
    ],
)
def test_another_database_or_driver_is_refused_without_showing_the_password(
    monkeypatch: pytest.MonkeyPatch, given: str, said: str
) -> None:
    monkeypatch.setenv("EXCHANGE_HISTORY_DB_URL", given)

    with pytest.raises(UserError) as refused:
        load_settings(HistorySettings)

    assert "EXCHANGE_HISTORY_DB_URL" in str(refused.value) and said in str(refused.value)
    assert "hunter2secret" not in str(refused.value)
