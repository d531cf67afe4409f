"""The relay's settings (``EXCHANGE_RELAY_*``) beside the shared ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runtime.settings import Settings


class RelaySettings(Settings):
    """Where the relay listens, how it treats its clients, and how far back it reads at boot."""

    relay_host: str = Field(default="127.0.0.1", description="address the WebSocket server listens on")
    relay_port: int = Field(
        default=8090, ge=0, le=65535, description="port of /ws, /healthz, /readyz, /metrics"
    )
    relay_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="relay processes sharing the port (SO_REUSEPORT), each a full relay reading Kafka",
    )
    relay_keys_file: Path | None = Field(
        default=None, description="the API keys (YAML), for the private channel"
    )
    relay_keys: str = Field(default="", description="API keys as YAML/JSON text (e.g. from a Secret)")
    relay_page_config: Path | None = Field(
        default=None,
        description="JSON served to loopback clients at /config.json (gateway URL, demo key); local only",
    )
    relay_recv_window_s: float = Field(
        default=5.0, gt=0, le=60, description="how far an auth timestamp may be from the relay's clock"
    )
    relay_client_queue: int = Field(
        default=2048, ge=8, le=1_000_000, description="messages queued per client before it is resynced"
    )
    relay_max_resyncs: int = Field(
        default=2, ge=0, le=100, description="resyncs within the window before a slow client is closed"
    )
    relay_resync_window_s: float = Field(default=30.0, gt=0, description="the window of relay_max_resyncs")
    relay_send_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="a send that takes longer closes the client (SLOW_CONSUMER)"
    )
    relay_socket_send_bytes: int = Field(
        default=256 * 1024,
        ge=4096,
        le=64 << 20,
        description="kernel send buffer per client: what a slow client holds before its queue fills",
    )
    relay_heartbeat_s: float = Field(default=5.0, gt=0, le=300, description="heartbeat message interval")
    relay_max_frame_bytes: int = Field(
        default=4096, ge=256, le=1 << 20, description="largest request frame a client may send"
    )
    relay_max_subscriptions: int = Field(default=100, ge=1, le=10_000, description="subscriptions per client")
    relay_rate_per_s: float = Field(default=20.0, gt=0, description="requests per second per client")
    relay_rate_burst: int = Field(default=100, ge=1, description="requests a client may send at once")
    relay_max_errors: int = Field(
        default=20, ge=1, description="refused requests per connection before it is closed (1008)"
    )
    relay_change_log: int = Field(
        default=10_000, ge=100, description="level changes kept per symbol for clients that resume"
    )
    relay_tape_hours: float = Field(
        default=24.0, ge=0, le=168, description="hours of trades read at boot (24 h volume, candles)"
    )
    relay_boot_margin_s: float = Field(
        default=60.0, ge=0, description="read `book` from this long before a snapshot was written"
    )
