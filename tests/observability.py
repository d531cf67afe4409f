"""What the alerts and dashboards name: every metric and label of each PromQL expression (parsed by
promql-parser, a port of Prometheus's own), checked against a set of known series, be it the
metrics the services register (tests/deploy) or those a running cluster's scrapes show (tests/e2e)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

K8S = Path(__file__).resolve().parents[1] / "k8s"
ALERTS = K8S / "base" / "alerts.yaml"
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
    """The groups of the PrometheusRule named exchange among ``objects``."""
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "exchange"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


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


def alert_file_exprs() -> list[tuple[str, str]]:
    """(alert, expression) of every rule in k8s/base/alerts.yaml, as written (no overlay changes them)."""
    return alert_exprs([yaml.safe_load(ALERTS.read_text())])


def alert_exprs(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for group in rule_groups(objects) for rule in group["rules"]]
