"""Metrics are named exchange_* and refuse labels with unbounded cardinality."""

import pytest
from prometheus_client import CollectorRegistry

from runtime.metrics import counter, exposition, gauge, histogram


def test_counter_is_exposed_under_its_name() -> None:
    registry = CollectorRegistry()
    commands = counter("exchange_commands_total", "commands", ["type"], registry=registry)

    commands.labels(type="new").inc(3)

    body, content_type = exposition(registry)
    assert b'exchange_commands_total{type="new"} 3.0' in body
    assert content_type.startswith("text/plain")


def test_metric_without_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with 'exchange_'"):
        gauge("resting_orders", "orders", registry=CollectorRegistry())


def test_counter_must_end_in_total() -> None:
    with pytest.raises(ValueError, match="_total"):
        counter("exchange_fills", "fills", registry=CollectorRegistry())


def test_account_label_is_refused_as_unbounded() -> None:
    with pytest.raises(ValueError, match="unbounded cardinality"):
        histogram("exchange_order_seconds", "latency", ["account"], registry=CollectorRegistry())
