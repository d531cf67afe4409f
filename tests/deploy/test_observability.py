"""Alerts and dashboards: every expression parses (a PromQL parser: promql-parser, a port of
Prometheus's own), and every metric and label they name is one the services register (statically,
from the metric definitions; a scrape of the running cluster is the e2e version). The rule
groups' structure is checked against the PrometheusRule CRD (test_k8s.py).

promtool would check the rule files too, but building it from the Go module proxy takes over
12 minutes on a new two-core machine, more than the rest of the suite's set-up together."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import promql_parser
import pytest
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from history.metrics import HistoryMetrics
from matcher.metrics import MatcherMetrics
from relay.metrics import RelayMetrics
from tests.deploy.conftest import K8S, one

DASHBOARDS = sorted((K8S / "base" / "dashboards").glob("*.json"))
# Grafana fills these in before Prometheus sees a query; the parser gets a plain range.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# Labels Prometheus adds to every scraped series (target labels), beside a metric's own.
TARGET_LABELS = frozenset({"job", "instance", "pod", "namespace", "container", "endpoint", "service"})
# Metrics the services do not export, with where they come from and the labels used.
EXTERNAL_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "up": ("Prometheus, for every scrape target", frozenset()),
    "kube_statefulset_replicas": ("kube-state-metrics", frozenset({"statefulset"})),
    "kube_statefulset_status_replicas_ready": ("kube-state-metrics", frozenset({"statefulset"})),
    "kube_deployment_status_replicas_available": ("kube-state-metrics", frozenset({"deployment"})),
    "kafka_brokers": ("Strimzi's Kafka Exporter", frozenset()),
    "kafka_topic_partition_current_offset": ("Strimzi's Kafka Exporter", frozenset({"topic", "partition"})),
    "kafka_topic_partition_under_replicated_partition": (
        "Strimzi's Kafka Exporter",
        frozenset({"topic", "partition"}),
    ),
    "kafka_consumergroup_lag": (
        "Strimzi's Kafka Exporter",
        frozenset({"consumergroup", "topic", "partition"}),
    ),
}


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


@dataclass
class Uses:
    """What an expression names: each selector's metric and labels, and each aggregation's grouping."""

    selectors: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    groupings: list[tuple[frozenset[str], list[str]]] = field(default_factory=list)


def uses_of(expr: str) -> Uses:
    uses = Uses()
    _walk(promql_parser.parse(expr), uses)
    return uses


def _walk(node: Any, uses: Uses) -> list[str]:
    """Record what ``node`` names; returns the metric names of the selectors beneath it."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        labels = frozenset(m.name for m in node.matchers.matchers) - {"__name__"}
        uses.selectors.append((node.name, labels))
        return [node.name]
    if kind == "MatrixSelector":
        return _walk(node.vector_selector, uses)
    if kind == "Call":
        return [name for arg in node.args for name in _walk(arg, uses)]
    if kind == "AggregateExpr":
        beneath = _walk(node.expr, uses) + (_walk(node.param, uses) if node.param is not None else [])
        if node.modifier is not None and str(node.modifier.type).endswith("By"):
            uses.groupings.append((frozenset(node.modifier.labels), beneath))
        return beneath
    if kind == "BinaryExpr":
        return _walk(node.lhs, uses) + _walk(node.rhs, uses)
    if kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        return _walk(node.expr, uses)
    if kind in ("NumberLiteral", "StringLiteral"):
        return []
    raise AssertionError(f"PromQL node {kind} is not handled: extend _walk")


def problems_of(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """What ``expr`` names that no service or listed exporter provides."""
    labels_of = {**known, **{name: labels for name, (_, labels) in EXTERNAL_METRICS.items()}}
    uses = uses_of(expr)
    problems = []
    for name, labels in uses.selectors:
        if name not in labels_of:
            problems.append(f"metric {name} is not exported")
        elif labels - labels_of[name] - TARGET_LABELS:
            problems.append(f"{name} has no label {sorted(labels - labels_of[name] - TARGET_LABELS)}")
    for grouping, beneath in uses.groupings:
        available = set(TARGET_LABELS).union(*(labels_of.get(name, frozenset()) for name in beneath))
        if grouping - available:
            problems.append(f"grouping by {sorted(grouping - available)}: not a label of {beneath}")
    return problems


def rule_groups(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return one(objects, "PrometheusRule", "exchange")["spec"]["groups"]


def dashboard_exprs() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression with Grafana's variables filled in) of every query."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((path.name, panel["title"], expr))
    return found


def alert_exprs(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for group in rule_groups(objects) for rule in group["rules"]]


def test_every_alert_and_dashboard_expression_parses(built: dict[str, list[dict[str, Any]]]) -> None:
    exprs = [expr for _, expr in alert_exprs(built["prod"])] + [expr for _, _, expr in dashboard_exprs()]
    assert len(exprs) >= 30
    for expr in exprs:
        promql_parser.parse(expr)


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
