"""Configuration from environment variables (prefix ``EXCHANGE_``), validated at start.

Every process builds one settings object at start; a bad value stops it with one line
that names the variable, instead of failing later somewhere deep in a service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.errors import UserError

DEFAULT_SYMBOLS_FILE = Path(__file__).with_name("symbols.yaml")


class Settings(BaseSettings):
    """Settings every process shares. Services subclass it to add their own."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore", frozen=True)

    kafka_bootstrap: str | None = Field(
        default=None, description="use this Kafka cluster; unset = start a local broker"
    )
    kafka_port: int = Field(default=9092, ge=1, le=65535, description="port of the local broker")
    kafka_version: str = Field(default="4.1.1", pattern=r"^4\.\d+\.\d+$", description="local broker version")
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", description="prefix of every topic")
    replies_partitions: int = Field(
        default=8, ge=1, description="partitions of the replies topic (keyed by gateway instance)"
    )
    data_dir: Path = Field(default=Path(".data"), description="broker storage, logs and local state")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "exchange-cluster", description="downloaded jars, reused"
    )
    symbols_file: Path = Field(default=DEFAULT_SYMBOLS_FILE, description="the symbol registry")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """Read settings from the environment; raise a one-line UserError naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise UserError(f"invalid settings: {problems}") from None
