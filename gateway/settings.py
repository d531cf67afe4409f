"""The gateway's settings (``EXCHANGE_GATEWAY_*``) beside the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runtime.settings import Settings


class GatewaySettings(Settings):
    """Where the gateway listens, how long it waits, who may use it and how often."""

    gateway_host: str = Field(default="127.0.0.1", description="address the REST API listens on")
    gateway_port: int = Field(default=8080, ge=0, le=65535, description="port of the REST API")
    gateway_workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    gateway_instance_id: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,64}$",
        description="this instance's id (its replies' key); empty = host and process id",
    )
    gateway_reply_wait_s: float = Field(
        default=5.0, gt=0, le=60, description="how long a request waits for its reply before a 202"
    )
    gateway_delivery_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="how long the broker may take to acknowledge a command"
    )
    gateway_keys_file: Path | None = Field(default=None, description="the API keys (YAML)")
    gateway_keys: str = Field(default="", description="API keys as YAML/JSON text (e.g. from a Secret)")
    gateway_recv_window_s: float = Field(
        default=5.0, gt=0, le=60, description="how far a request's timestamp may be from the gateway's clock"
    )
    gateway_rate_per_s: float = Field(default=200.0, gt=0, description="requests per second per key")
    gateway_rate_burst: int = Field(default=400, ge=1, description="requests a key may send at once")
    gateway_cors_origins: str = Field(
        default="",
        description="comma-separated browser origins that may call the API (the relay's page); none: off",
    )
    gateway_max_body_bytes: int = Field(default=8192, ge=256, le=1 << 20, description="largest request body")
