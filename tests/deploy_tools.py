"""The command-line tools the deployment tests run, built once from the Go module proxy and reused.

``kustomize`` (what ``kubectl apply -k`` runs) is
built with ``go install MODULE@VERSION`` into ``cache_dir/tools/NAME-VERSION/NAME`` (``cache_dir``
is EXCHANGE_CACHE_DIR, the same place runtime/broker.py keeps the Kafka jars). A build runs once,
under a lock, into a scratch directory renamed into place when done, so an interrupted build
leaves nothing that looks finished. ``./dev`` runs ``python -m tests.deploy_tools`` at set-up;
the tests call :func:`ensure_tool` too, which returns at once when the tool is there.

The versions are the newest that build with the Go of the project's machines (1.26); a newer
kustomize (5.8.3) needs Go 1.27.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import UserError
from runtime.settings import load_settings


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str  # the package `go install` builds, without the version
    version: str


KUSTOMIZE = GoTool("kustomize", "sigs.k8s.io/kustomize/kustomize/v5", "v5.8.1")
TOOLS = (KUSTOMIZE,)
BUILD_TIMEOUT_S = 1800.0


def tools_dir() -> Path:
    return load_settings().cache_dir / "tools"


def tool_path(tool: GoTool, root: Path | None = None) -> Path:
    return (root or tools_dir()) / f"{tool.name}-{tool.version}" / tool.name


def ensure_tool(tool: GoTool, root: Path | None = None) -> Path:
    """The tool's executable, built first if this machine has not built this version yet."""
    path = tool_path(tool, root)
    if path.is_file():
        return path
    go = shutil.which("go")
    if go is None:
        raise UserError(f"Go is needed once to build {tool.name} {tool.version} into {path.parent}")
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent.parent / f".{tool.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():  # another process may have built it while we waited
            _build(go, tool, path)
    return path


def _build(go: str, tool: GoTool, path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f".{tool.name}-", dir=path.parent.parent) as scratch:
        # GOTOOLCHAIN=local: build with this machine's Go, never fetch another one.
        env = {**os.environ, "GOBIN": scratch, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
        done = subprocess.run(
            [go, "install", f"{tool.module}@{tool.version}"],
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-10:])
            raise UserError(f"go install {tool.module}@{tool.version} failed:\n{tail}")
        built = Path(scratch) / tool.name
        partial = Path(scratch) / "done"
        partial.mkdir()
        built.rename(partial / tool.name)
        partial.rename(path.parent)


def main() -> int:
    try:
        for tool in TOOLS:
            print(f"{tool.name} {tool.version}: {ensure_tool(tool)}")
    except UserError as exc:
        print(f"deploy tools: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
