"""The history service's Prometheus metrics (``exchange_history_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from runtime.metrics import counter, gauge, histogram

# A batch is one database transaction: milliseconds on SQLite, more on a busy PostgreSQL.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


class HistoryMetrics:
    """Rows written, batch time, how far behind `executions` the store is, and the API's requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rows = counter(
            "exchange_history_rows_written_total",
            "Rows written to the store, by table and kind (orders inserted or updated, fills inserted)",
            ["table", "kind"],
            registry,
        )
        self.records = counter(
            "exchange_history_records_applied_total", "`executions` records applied", registry=registry
        )
        self.undecodable = counter(
            "exchange_history_undecodable_records_total",
            "`executions` records that could not be decoded (skipped)",
            registry=registry,
        )
        self.batch_seconds = histogram(
            "exchange_history_batch_seconds",
            "Time to write one batch (one database transaction)",
            registry=registry,
            buckets=BATCH_BUCKETS,
        )
        self.lag_records = gauge(
            "exchange_history_lag_records",
            "Committed `executions` records not yet in the store, by partition",
            ["partition"],
            registry,
        )
        self.lag_seconds = gauge(
            "exchange_history_lag_seconds",
            "Age of the last applied record while records wait (0 when caught up), by partition",
            ["partition"],
            registry,
        )
        self.database_errors = counter(
            "exchange_history_database_errors_total",
            "Batches the database refused or failed (each is retried from the stored positions)",
            registry=registry,
        )
        self.requests = histogram(
            "exchange_history_request_duration_seconds",
            "Time to answer an API request, by route template and status class",
            ["route", "status_class"],
            registry=registry,
        )
