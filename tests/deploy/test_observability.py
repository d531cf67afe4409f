"""Alerts and dashboards: every expression parses (a PromQL parser: promql-parser, a port of
Prometheus's own), and every metric and label they name is one the services register (statically,
from the metric definitions; a scrape of the running cluster is the e2e version). The rule
groups' structure is checked against the PrometheusRule CRD (test_k8s.py).

promtool would check the rule files too, but building it from the Go module proxy takes over
12 minutes on a new two-core machine, more than the rest of the suite's set-up together."""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import pytest
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from history.metrics import HistoryMetrics
from matcher.metrics import MatcherMetrics
from relay.metrics import RelayMetrics
from tests.observability import DASHBOARDS, K8S, alert_exprs, alert_file_exprs, dashboard_exprs, problems_of


def registered_metrics() -> dict[str, frozenset[str]]:
    """Every series name the matcher, the gateway, the relay and history register, with its labels."""
    registry = CollectorRegistry()
    MatcherMetrics(0, registry)
    GatewayMetrics(registry)
    RelayMetrics(registry)
    HistoryMetrics(registry)
    names: dict[str, frozenset[str]] = {}
    for name, collector in registry._names_to_collectors.items():
        labels = frozenset(getattr(collector, "_labelnames", ()))
        names[name] = labels | {"le"} if name.endswith("_bucket") else labels
    return names


def test_every_alert_and_dashboard_expression_parses(built: dict[str, list[dict[str, Any]]]) -> None:
    exprs = [expr for _, expr in alert_exprs(built["prod"])] + [expr for _, _, expr in dashboard_exprs()]
    assert len(exprs) >= 30
    for expr in exprs:
        promql_parser.parse(expr)


def test_the_alerts_file_is_what_every_build_ships(built: dict[str, list[dict[str, Any]]]) -> None:
    # The e2e coverage test reads k8s/base/alerts.yaml itself: no overlay may change a rule.
    for objects in built.values():
        assert alert_exprs(objects) == alert_file_exprs()


def test_every_metric_and_label_in_the_alerts_is_exported(built: dict[str, list[dict[str, Any]]]) -> None:
    known = registered_metrics()
    problems = {alert: problems_of(expr, known) for alert, expr in alert_exprs(built["prod"])}

    assert {alert: found for alert, found in problems.items() if found} == {}


def test_every_metric_and_label_in_the_dashboards_is_exported() -> None:
    known = registered_metrics()
    problems = {f"{d}: {title}": problems_of(expr, known) for d, title, expr in dashboard_exprs()}

    assert {panel: found for panel, found in problems.items() if found} == {}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(exchange_matcher_comands_total[5m])", "metric exchange_matcher_comands_total is not exported"),
        ('exchange_matcher_input_lag_commands{symbol="BTC-USD"}', "has no label ['symbol']"),
        ("sum by (route) (exchange_matcher_resting_orders)", "grouping by ['route']"),
        ("sum(rate(exchange_relay_dropped_client_total[5m]))", "exchange_relay_dropped_client_total is not"),
        ('exchange_history_lag_records{symbol="BTC-USD"}', "has no label ['symbol']"),
    ],
)
def test_a_misspelt_metric_or_label_is_reported(expr: str, problem: str) -> None:
    (found,) = problems_of(expr, registered_metrics())

    assert problem in found


def test_the_alerts_cover_what_the_services_can_go_wrong_with(built: dict[str, list[dict[str, Any]]]) -> None:
    alerts = {alert for alert, _ in alert_exprs(built["prod"])}

    assert alerts == {
        "MatcherDown",
        "MatcherNotReady",
        "MatcherInputLagGrowing",
        "MatcherTransactionAborts",
        "MatcherDeadLetters",
        "MatcherStateSnapshotTooOld",
        "GatewayServerErrors",
        "GatewayLatencyHigh",
        "RelayDroppingClients",
        "RelayResyncingClients",
        "RelayDeliveryLagHigh",
        "HistoryNotReady",
        "HistoryLagRecords",
        "HistoryLagSeconds",
        "HistoryDatabaseErrors",
    }


def test_every_dashboard_has_a_unique_uid_and_described_panels() -> None:
    dashboards = [json.loads(path.read_text()) for path in DASHBOARDS]

    assert len({d["uid"] for d in dashboards}) == len(dashboards) == 5
    for dashboard in dashboards:
        for panel in dashboard["panels"]:
            assert panel["description"] and panel["targets"], panel["title"]


def test_the_dashboards_doc_has_a_line_for_every_panel() -> None:
    doc = (K8S.parent / "docs" / "dashboards.md").read_text()

    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            assert f"- **{panel['title']}**: {panel['description']}" in doc, f"{path.name}: {panel['title']}"
