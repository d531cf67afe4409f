"""Fixtures of the deployment tests (offline, no cluster): the overlays as kustomize builds them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_tools import KUSTOMIZE, ensure_tool

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
# Every kustomization that is built: the overlays one applies, and the base they share.
BUILDS = {"base": K8S / "base", **{name: K8S / "overlays" / name for name in OVERLAYS}}


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return ensure_tool(KUSTOMIZE)


@pytest.fixture(scope="session")
def built(kustomize: Path) -> dict[str, list[dict[str, Any]]]:
    """Each kustomization's output, as the list of objects `kubectl apply -k` would send."""
    out = {}
    for name, directory in BUILDS.items():
        done = subprocess.run(
            [str(kustomize), "build", str(directory)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"kustomize build {directory}: {done.stderr}"
        out[name] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = only(objects, kind, name)
    assert len(found) == 1, f"{len(found)} {kind}/{name}"
    return found[0]
