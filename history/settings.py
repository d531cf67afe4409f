"""The history service's settings (``EXCHANGE_HISTORY_*``) beside the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from runtime.settings import Settings

SQLITE_FILE = "history.sqlite3"
# The drivers the store is written and tested for; a plain postgresql:// URL (as libpq and
# CloudNativePG's generated app secret write it) means psycopg 3, the one installed.
STORE_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class HistorySettings(Settings):
    """Where the store is, how the writer batches, where the API listens and who may use it."""

    history_db_url: str = Field(
        default="",
        description="SQLAlchemy URL of the store (postgresql+psycopg://...); empty = a SQLite file "
        "in the data directory",
    )
    history_host: str = Field(default="127.0.0.1", description="address the history API listens on")
    history_port: int = Field(default=8070, ge=0, le=65535, description="port of the history API")
    history_batch_max_records: int = Field(
        default=2000, ge=1, le=100_000, description="`executions` records per database transaction, at most"
    )
    history_batch_max_ms: int = Field(
        default=50, ge=0, le=10_000, description="a batch waits at most this long to fill"
    )
    history_retry_s: float = Field(
        default=1.0, gt=0, le=60, description="pause before retrying after the database failed"
    )
    history_keys_file: Path | None = Field(default=None, description="the API keys (YAML), as the gateway's")
    history_keys: str = Field(default="", description="API keys as YAML/JSON text (e.g. from a Secret)")
    history_recv_window_s: float = Field(
        default=5.0, gt=0, le=60, description="how far a request's timestamp may be from this clock"
    )
    history_rate_per_s: float = Field(default=50.0, gt=0, description="requests per second per key")
    history_rate_burst: int = Field(default=100, ge=1, description="requests a key may send at once")

    @field_validator("history_db_url")
    @classmethod
    def _a_store_url(cls, url: str) -> str:
        return store_url(url) if url else url

    def database_url(self) -> str:
        """The store's URL: the one set, else the SQLite file under the data directory."""
        if self.history_db_url:
            return self.history_db_url
        return f"sqlite:///{(self.data_dir / SQLITE_FILE).resolve()}"


def store_url(url: str) -> str:
    """``url`` with the driver the store uses; ValueError for a URL of another database or driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (postgresql://user:password@host:port/db)") from None
    scheme = parsed.drivername
    backend = parsed.get_backend_name()
    if scheme not in STORE_DRIVERS and scheme not in STORE_DRIVERS.values():
        known = ", ".join(sorted({*STORE_DRIVERS, *STORE_DRIVERS.values()}))
        raise ValueError(f"the store is SQLite or PostgreSQL ({known}), not {scheme!r} ({backend})")
    if scheme in STORE_DRIVERS.values():
        return url  # as given: nothing to change
    return parsed.set(drivername=STORE_DRIVERS[scheme]).render_as_string(hide_password=False)
