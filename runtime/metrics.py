"""Prometheus helpers: every metric is named ``exchange_...`` and carries only bounded labels.

Labels such as an account, an order id or a client order id would create one time series
per value and overwhelm Prometheus, so they are refused here, where metrics are made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

PREFIX = "exchange_"
# prometheus_client's multiprocess mode: set before it is imported, every value lives in a file there.
SHARED_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
UNBOUNDED_LABELS = frozenset(
    {"account", "order_id", "client_order_id", "request_id", "trade_id", "price", "user", "offset"}
)

# Seconds from a millisecond to a minute: covers a produce, a transaction and a recovery.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


def _checked(name: str, labels: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    if not name.startswith(PREFIX):
        raise ValueError(f"metric {name!r} must start with {PREFIX!r}")
    unbounded = UNBOUNDED_LABELS.intersection(labels)
    if unbounded:
        raise ValueError(f"metric {name!r}: labels {sorted(unbounded)} have unbounded cardinality")
    return name, tuple(labels)


def counter(
    name: str, doc: str, labels: Sequence[str] = (), registry: CollectorRegistry = REGISTRY
) -> Counter:
    """A counter; by Prometheus convention its name ends in ``_total``."""
    if not name.endswith("_total"):
        raise ValueError(f"counter {name!r} must end with '_total'")
    name, names = _checked(name, labels)
    return Counter(name, doc, names, registry=registry)


def gauge(
    name: str,
    doc: str,
    labels: Sequence[str] = (),
    registry: CollectorRegistry = REGISTRY,
    across_processes: Literal["all", "livesum", "livemax"] = "all",
) -> Gauge:
    """A gauge (a value that goes up and down); ``across_processes``: how the values of a pod's worker
    processes add up when they share their metrics (:func:`exposed`): each apart, summed or the largest."""
    name, names = _checked(name, labels)
    return Gauge(name, doc, names, registry=registry, multiprocess_mode=across_processes)


def histogram(
    name: str,
    doc: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = LATENCY_BUCKETS,
    registry: CollectorRegistry = REGISTRY,
) -> Histogram:
    """A histogram; durations are in seconds and named ``..._seconds``."""
    name, names = _checked(name, labels)
    return Histogram(name, doc, names, buckets=tuple(buckets), registry=registry)


def exposed(registry: CollectorRegistry) -> CollectorRegistry:
    """What a process's /metrics shows: its ``registry``, or, when the worker processes of one pod share
    their metrics (``PROMETHEUS_MULTIPROC_DIR``, set by their supervisor), what all of them wrote."""
    if SHARED_METRICS_DIR not in os.environ:
        return registry
    shared = CollectorRegistry()
    MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
    return shared


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The registry in Prometheus text format, with its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
