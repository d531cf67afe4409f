"""The relay's Prometheus metrics (``exchange_relay_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from runtime.metrics import LATENCY_BUCKETS, counter, exposed, gauge, histogram


class RelayMetrics:
    """Clients, subscriptions, what was sent, slow clients, and how late market data reaches clients."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # What /metrics shows: with several workers in the pod (`exchange relay --workers`), all of theirs.
        self.exposed = exposed(registry)
        self.clients = gauge("exchange_relay_clients", "Connected WebSocket clients", (), registry, "livesum")
        self.subscriptions = gauge(
            "exchange_relay_subscriptions", "Subscriptions by channel", ["channel"], registry, "livesum"
        )
        self.messages_sent = counter(
            "exchange_relay_messages_sent_total", "Messages written to clients", registry=registry
        )
        self.bytes_sent = counter(
            "exchange_relay_sent_bytes_total", "Bytes of messages written to clients", registry=registry
        )
        self.dropped = counter(
            "exchange_relay_dropped_clients_total",
            "Clients the relay closed, by reason (SLOW_CONSUMER, FLOOD, ...)",
            ["reason"],
            registry,
        )
        self.resyncs = counter(
            "exchange_relay_resyncs_total",
            "Slow clients whose queue was dropped and replaced by fresh snapshots",
            registry=registry,
        )
        self.protocol_errors = counter(
            "exchange_relay_protocol_errors_total", "Requests refused, by error code", ["code"], registry
        )
        self.delivery_lag = histogram(
            "exchange_relay_delivery_lag_seconds",
            "From the command's timestamp (the gateway's clock) to the message's send",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.records = counter(
            "exchange_relay_records_total", "Kafka records read, by topic role", ["topic"], registry
        )
        self.step_backs = counter(
            "exchange_relay_step_backs_total",
            "Times a `book` partition was read again from further back to close a gap",
            registry=registry,
        )
        self.gaps = gauge(
            "exchange_relay_book_gaps",
            "Symbols whose book waits for earlier deltas or a snapshot",
            registry=registry,
            across_processes="livemax",
        )
