"""The gateway's Prometheus metrics (``exchange_gateway_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from runtime.metrics import counter, gauge, histogram

# A request's life is milliseconds; a 202 waits seconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Requests by route and status class, orders by result, reply waits, what is in flight."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = histogram(
            "exchange_gateway_request_duration_seconds",
            "Time to answer a request, by route template, method and status class (2xx, 4xx, ...)",
            ["route", "method", "status_class"],
            REQUEST_BUCKETS,
            registry,
        )
        self.orders = counter(
            "exchange_gateway_orders_total",
            "Orders by result: their status after the command, rejected, unavailable or pending",
            ["result"],
            registry,
        )
        self.reply_wait = histogram(
            "exchange_gateway_reply_wait_seconds",
            "From producing a command to its reply (commands answered in time)",
            registry=registry,
            buckets=REQUEST_BUCKETS,
        )
        self.delivery = histogram(
            "exchange_gateway_delivery_seconds",
            "From producing a command to the broker's acknowledgement (the first part of the reply wait)",
            registry=registry,
            buckets=REQUEST_BUCKETS,
        )
        self.in_flight = gauge(
            "exchange_gateway_requests_in_flight", "Requests being handled", registry=registry
        )
        self.pending_replies = gauge(
            "exchange_gateway_pending_replies", "Commands written whose reply is awaited", registry=registry
        )
        self.late_replies = counter(
            "exchange_gateway_late_replies_total",
            "Replies that came after their request was answered 202",
            registry=registry,
        )
        self.refused = counter(
            "exchange_gateway_refused_total",
            "Requests answered with an error, by its code (the edge's and the matcher's reasons)",
            ["code"],
            registry,
        )
