"""The Kubernetes objects: kustomize builds every overlay, each built-in object is valid against the
Kubernetes schemas, each custom resource against its operator's CRD, and the objects agree with
the code (topics, partition count, probes, memory, grace period)."""

from __future__ import annotations

import copy
import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.routes import admin, market, orders
from history import api as history_api
from history.settings import store_url
from matcher.service import SNAPSHOT_AT_STOP_WAIT_S
from relay.metrics import RelayMetrics
from relay.settings import RelaySettings
from runtime.keys import parse_keys
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import SymbolRegistry, load_registry
from runtime.topics import TopicNames, topic_specs
from tests.deploy.conftest import BUILDS, K8S, one, only

# The oldest Kubernetes the objects are meant for, and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.33.0", "1.37.0")
# The CRDs of the operators the custom resources are for, vendored (tests/deploy_schemas/README.md).
CRD_DIR = Path(__file__).resolve().parents[1] / "deploy_schemas" / "crds"
# README: memory limit >= base + heap x (1 + 1.15); heap ~575 bytes a resting order.
BASE_RSS_BYTES = 200 * 2**20
BYTES_PER_RESTING_ORDER = 575
SNAPSHOT_CHILD_FACTOR = 1.15
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")
# The HTTP services beside the matchers, with the port each listens on in its pod.
SERVICES = {"gateway": 8080, "relay": 8090, "history": 8070}
GATEWAY_ROUTERS = (orders.router, market.router, admin.router)
RELAY_WEB = Path(__file__).resolve().parents[2] / "relay" / "web"


def _is_custom(obj: dict[str, Any]) -> bool:
    """Whether the object's API group is not Kubernetes' own (core, apps, ..., *.k8s.io)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def _bytes(quantity: str) -> int:
    match = QUANTITY.match(quantity)
    assert match, quantity
    return int(match[1]) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match[2]]


def _registry(objects: list[dict[str, Any]]) -> SymbolRegistry:
    """The symbols ConfigMap's registry, read the way every process reads its file."""
    (config_map,) = [o for o in only(objects, "ConfigMap") if o["metadata"]["name"].startswith("symbols")]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "symbols.yaml"
        path.write_text(config_map["data"]["symbols.yaml"])
        return load_registry(path)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("build", list(BUILDS))
def test_every_builtin_object_is_valid_against_the_kubernetes_schemas(
    built: dict[str, list[dict[str, Any]]], build: str, version: str
) -> None:
    builtin = [o for o in built[build] if not _is_custom(o)]
    assert len(builtin) >= 10
    for obj in builtin:
        kubernetes_validate.validate(obj, version, strict=True)


def test_an_invalid_object_is_refused_by_the_validation() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": "80"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSIONS[-1], strict=True)


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of every version the vendored CRDs serve."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd:
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    if version["served"]:
                        schema = closed(version["schema"]["openAPIV3Schema"])
                        schemas[f"{group}/{version['name']}", kind] = schema
    return schemas


def closed(schema: Any) -> Any:
    """The schema with every object closed that the API server would prune unknown fields from.

    A structural schema's API server drops a field it does not know, silently: a misspelt field
    is lost, not refused. Refusing it here is what makes a typo fail the test.
    """
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema = {**schema, "additionalProperties": False}
        return {key: closed(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def crd_errors(obj: dict[str, Any]) -> list[str]:
    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"no CRD serves {obj['apiVersion']} {obj['kind']}"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


@pytest.mark.parametrize("build", list(BUILDS))
def test_every_custom_resource_is_valid_against_its_operators_crd(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    custom = [o for o in built[build] if _is_custom(o)]

    errors = {f"{o['kind']}/{o['metadata']['name']}": crd_errors(o) for o in custom}
    assert {name: found for name, found in errors.items() if found} == {}
    # Every vendored CRD is used: PostgreSQL (CloudNativePG's Cluster) in prod only.
    vendored = {kind for _, kind in crd_schemas()}
    assert {o["kind"] for o in custom} == (vendored if build == "prod" else vendored - {"Cluster"})


def test_a_misspelt_or_missing_custom_resource_field_is_refused(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    kafka = copy.deepcopy(one(built["prod"], "Kafka", "exchange"))
    kafka["spec"]["kafka"]["listners"] = kafka["spec"]["kafka"].pop("listeners")
    topic = copy.deepcopy(one(built["prod"], "KafkaTopic", "orders"))
    topic["spec"]["partitions"] = "8"

    assert any("listeners" in e for e in crd_errors(kafka))
    assert any("listners" in e for e in crd_errors(kafka))
    assert crd_errors(topic)
    assert crd_errors({**topic, "apiVersion": "kafka.strimzi.io/v1beta3"})


def test_a_misspelt_postgresql_cluster_field_is_refused(built: dict[str, list[dict[str, Any]]]) -> None:
    database = copy.deepcopy(one(built["prod"], "Cluster", "history-db"))
    database["spec"]["instance"] = database["spec"].pop("instances")
    negative = copy.deepcopy(one(built["prod"], "Cluster", "history-db"))
    negative["spec"]["instances"] = 0

    assert any("instance" in e for e in crd_errors(database))
    assert crd_errors(negative)


def test_the_partition_count_marker_never_reaches_the_cluster(built: dict[str, list[dict[str, Any]]]) -> None:
    for objects in built.values():
        assert not only(objects, "PartitionCount")


@pytest.mark.parametrize(("build", "partitions"), [("base", 4), ("dev", 1), ("prod", 8)])
def test_registry_topics_and_matchers_share_one_partition_count(
    built: dict[str, list[dict[str, Any]]], build: str, partitions: int
) -> None:
    objects = built[build]
    registry = _registry(objects)
    keyed_by_symbol = [
        t for t in only(objects, "KafkaTopic") if t["metadata"]["name"] not in ("replies", "replies-early")
    ]

    assert registry.partition_count == partitions
    assert one(objects, "StatefulSet", "matcher")["spec"]["replicas"] == partitions
    assert {t["spec"]["partitions"] for t in keyed_by_symbol} == {partitions}
    assert len(keyed_by_symbol) == 7


@pytest.mark.parametrize("build", list(BUILDS))
def test_a_kafka_topic_for_every_topic_of_the_code_with_its_partitions_and_config(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    objects = built[build]
    specs = topic_specs(
        TopicNames.with_prefix(""), partitions=_registry(objects).partition_count, replies_partitions=8
    )
    topics = {t["metadata"]["name"]: t["spec"] for t in only(objects, "KafkaTopic")}
    replicas = one(objects, "KafkaNodePool", "dual-role")["spec"]["replicas"]

    assert set(topics) == {spec.name for spec in specs}
    for spec in specs:
        assert topics[spec.name]["partitions"] == spec.partitions, spec.name
        assert {k: str(v) for k, v in topics[spec.name]["config"].items()} == dict(spec.config), spec.name
        assert topics[spec.name]["replicas"] == replicas, spec.name


@pytest.mark.parametrize("build", list(BUILDS))
def test_matcher_pods_take_their_partition_from_their_ordinal(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    matcher = one(built[build], "StatefulSet", "matcher")
    (container,) = matcher["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}

    assert container["args"] == ["matcher", "--pod-name", "$(POD_NAME)"]
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert one(built[build], "Service", matcher["spec"]["serviceName"])["spec"]["clusterIP"] == "None"
    assert only(built[build], "PodDisruptionBudget", "matcher")


@pytest.mark.parametrize("build", list(BUILDS))
def test_a_matcher_has_time_to_leave_its_snapshot_when_stopped(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    spec = one(built[build], "StatefulSet", "matcher")["spec"]["template"]["spec"]

    assert spec["terminationGracePeriodSeconds"] >= SNAPSHOT_AT_STOP_WAIT_S + 10


@pytest.mark.parametrize("build", list(BUILDS))
def test_matcher_memory_leaves_room_for_the_snapshot_childs_copied_pages(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    matcher = one(built[build], "StatefulSet", "matcher")
    orders = int(matcher["metadata"]["annotations"]["exchange-cluster/sized-for-resting-orders"])
    (container,) = matcher["spec"]["template"]["spec"]["containers"]
    heap = orders * BYTES_PER_RESTING_ORDER

    limit = _bytes(container["resources"]["limits"]["memory"])
    assert limit >= BASE_RSS_BYTES + heap * (1 + SNAPSHOT_CHILD_FACTOR)
    # Requests equal to the limit: the scheduler reserves what the snapshot will take.
    assert _bytes(container["resources"]["requests"]["memory"]) == limit


@pytest.mark.parametrize(("build", "service"), [(b, s) for b in BUILDS for s in SERVICES])
def test_each_service_is_probed_on_its_port_and_has_a_service_a_budget_and_a_monitor(
    built: dict[str, list[dict[str, Any]]], build: str, service: str
) -> None:
    objects = built[build]
    (container,) = one(objects, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    port = one(objects, "Service", service)["spec"]["ports"][0]
    monitor = one(objects, "ServiceMonitor", service)["spec"]

    assert container["args"] == [service]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": SERVICES[service]}]
    assert env[f"EXCHANGE_{service.upper()}_PORT"] == str(SERVICES[service])
    assert port["targetPort"] == "http" and port["port"] == SERVICES[service]
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    assert monitor["selector"]["matchLabels"] == {"app.kubernetes.io/name": service}
    assert monitor["endpoints"][0]["port"] == "http" and monitor["endpoints"][0]["path"] == "/metrics"
    assert only(objects, "PodDisruptionBudget", service)


@pytest.mark.parametrize("build", list(BUILDS))
def test_no_relay_serves_a_page_config_holding_a_key(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    (container,) = one(built[build], "Deployment", "relay")["spec"]["template"]["spec"]["containers"]

    assert "EXCHANGE_RELAY_PAGE_CONFIG" not in {e["name"] for e in container["env"]}
    assert "EXCHANGE_RELAY_PAGE_CONFIG" not in _compose_relay_env()


@pytest.mark.parametrize("build", list(BUILDS))
def test_gateway_and_relay_scale_on_cpu_and_the_relay_on_its_clients_where_an_adapter_is_expected(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    objects = built[build]
    gateway, relay = (one(objects, "HorizontalPodAutoscaler", name)["spec"] for name in ("gateway", "relay"))
    relay_pods_metrics = [m["pods"]["metric"]["name"] for m in relay["metrics"] if m["type"] == "Pods"]
    exported = RelayMetrics(CollectorRegistry())

    for hpa in (gateway, relay):
        assert hpa["metrics"][0]["resource"]["name"] == "cpu" and hpa["minReplicas"] <= hpa["maxReplicas"]
    # A metric the HPA reads must be the relay's own gauge of connected clients, by that name.
    assert relay_pods_metrics == ([] if build == "dev" else [exported.clients._name])
    assert one(objects, "Deployment", "relay")["spec"]["replicas"] == relay["minReplicas"]


@pytest.mark.parametrize("build", list(BUILDS))
def test_history_is_exactly_one_writer(built: dict[str, list[dict[str, Any]]], build: str) -> None:
    objects = built[build]
    history = one(objects, "Deployment", "history")["spec"]
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in only(objects, "HorizontalPodAutoscaler")}

    assert history["replicas"] == 1
    # Recreate: the old pod is gone before the new one starts, never two writers at once.
    assert history["strategy"] == {"type": "Recreate"}
    assert "history" not in scaled


@pytest.mark.parametrize("build", ["base", "dev"])
def test_history_keeps_its_sqlite_store_on_a_volume_outside_prod(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    objects = built[build]
    spec = one(objects, "Deployment", "history")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claim = volumes[mounts["/var/lib/exchange"]]["persistentVolumeClaim"]["claimName"]

    assert "EXCHANGE_HISTORY_DB_URL" not in {e["name"] for e in container["env"]}
    assert one(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]


def test_prod_history_reads_its_postgresql_url_from_the_operators_app_secret(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    objects = built["prod"]
    (container,) = one(objects, "Deployment", "history")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    database = one(objects, "Cluster", "history-db")

    # CloudNativePG names the application user's Secret <cluster>-app; `uri` is postgresql://...
    assert env["EXCHANGE_HISTORY_DB_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{database['metadata']['name']}-app",
        "key": "uri",
    }
    assert store_url("postgresql://history:pw@history-db-rw:5432/history").startswith("postgresql+psycopg://")
    assert database["spec"]["instances"] >= 2
    assert not only(objects, "PersistentVolumeClaim")


def _compose_relay_env() -> dict[str, Any]:
    compose = yaml.safe_load((K8S.parent / "docker-compose.yml").read_text())
    env: dict[str, Any] = compose["services"]["relay"]["environment"]
    return env


def ingress_service(ingress: dict[str, Any], path: str) -> str | None:
    """The Service an Ingress sends ``path`` to, by Kubernetes' rule: the longest matching path
    wins, Exact before Prefix; a Prefix matches whole path elements (/api matches /api/v1, not /apix)."""
    (rule,) = ingress["spec"]["rules"]
    matches = []
    for candidate in rule["http"]["paths"]:
        route, exact = candidate["path"], candidate["pathType"] == "Exact"
        elements = route.rstrip("/").split("/")
        if path == route if exact else path.split("/")[: len(elements)] == elements:
            matches.append((len(route.rstrip("/")), exact, candidate["backend"]["service"]["name"]))
    return max(matches)[2] if matches else None


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", template)


@pytest.mark.parametrize("build", list(BUILDS))
def test_the_ingress_sends_every_route_to_the_service_that_serves_it(
    built: dict[str, list[dict[str, Any]]], build: str
) -> None:
    ingress = one(built[build], "Ingress", "exchange")
    gateway_paths = {_concrete(r.path) for router in GATEWAY_ROUTERS for r in router.routes}  # type: ignore[attr-defined]
    history_paths = {_concrete(r.path) for r in history_api.router.routes}  # type: ignore[attr-defined]
    page_files = {f"/{file.name}" for file in RELAY_WEB.iterdir() if file.is_file()}
    expected = {
        **{path: "gateway" for path in gateway_paths},
        **{path: "history" for path in history_paths},
        **{path: "relay" for path in ("/ws", "/", *page_files)},
        # Not published: the probes, the metrics, the loopback-only page config, the OpenAPI pages.
        **{
            path: None
            for path in ("/metrics", "/healthz", "/readyz", "/config.json", "/docs", "/x/../metrics")
        },
    }

    assert len(gateway_paths) >= 8 and len(history_paths) == 4 and len(page_files) >= 5
    assert {path: ingress_service(ingress, path) for path in expected} == expected
    # Prefix paths match whole elements: a look-alike path stays with the gateway's /api.
    assert ingress_service(ingress, "/api/v1/fillsX") == "gateway"
    assert ingress_service(ingress, "/api/v1/orders/history/1") == "gateway"


def test_the_ingress_keeps_websockets_open_longer_than_the_relays_heartbeat(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    annotations = one(built["prod"], "Ingress", "exchange")["metadata"]["annotations"]
    heartbeat_s = RelaySettings().relay_heartbeat_s

    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) > heartbeat_s * 10


def test_prod_spreads_matchers_gateways_and_relays_over_nodes(built: dict[str, list[dict[str, Any]]]) -> None:
    for kind, name in (("StatefulSet", "matcher"), ("Deployment", "gateway"), ("Deployment", "relay")):
        spec = one(built["prod"], kind, name)["spec"]["template"]["spec"]
        assert spec["affinity"]["podAntiAffinity"], name
    assert one(built["prod"], "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] >= 3


def test_dashboards_are_config_maps_for_the_grafana_sidecar(built: dict[str, list[dict[str, Any]]]) -> None:
    dashboards = one(built["prod"], "ConfigMap", "grafana-dashboards")

    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(dashboards["data"]) == {p.name for p in (K8S / "base" / "dashboards").glob("*.json")}


def test_the_api_keys_secret_template_is_a_valid_secret_holding_a_key_document() -> None:
    template = yaml.safe_load((K8S / "base" / "api-keys.example.yaml").read_text())

    kubernetes_validate.validate(template, KUBERNETES_VERSIONS[-1], strict=True)
    keys = parse_keys(yaml.safe_load(template["stringData"]["keys.yaml"]), "the template")
    assert len(keys) == 1


def test_overlay_symbol_registries_list_the_symbols_of_the_local_registry() -> None:
    local = load_registry(DEFAULT_SYMBOLS_FILE)
    for registry_file in (K8S / "base" / "symbols.yaml", *(K8S / "overlays").glob("*/symbols.yaml")):
        text = registry_file.read_text()
        assert text.count("partition_count: ") == 1, "the replacement splits the file at this key"
        assert sorted(s.name for s in load_registry(registry_file)) == sorted(s.name for s in local)
