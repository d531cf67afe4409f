"""What the browser test needs beyond the Python environment, installed here when missing.

- Chromium from Debian's `chromium` package, and a Korean font (`fonts-nanum`) so the page's
  Hangul renders in the screenshot (``apt-get install -y chromium fonts-nanum``, as root);
- playwright-core from npm, pinned, in ``build/e2e-node`` (used only to drive that Chromium: it
  downloads no browser of its own).

Either missing and not installable fails the test with the command to run by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Debian packages the test needs, each with a path that shows it is installed.
DEBIAN_PACKAGES = {"chromium": CHROMIUM, "fonts-nanum": Path("/usr/share/fonts/truetype/nanum")}
PLAYWRIGHT_CORE = "playwright-core@1.65.1"
NODE_DIR = PROJECT_ROOT / "build" / "e2e-node"
ARTIFACTS = PROJECT_ROOT / "build" / "test-artifacts"
INSTALL_GUARD_S = 600


@dataclass(frozen=True)
class BrowserTools:
    """The node binary, the playwright-core module directory and the Chromium to launch."""

    node: str
    playwright_core: Path
    chromium: Path
    artifacts: Path


def _install(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=INSTALL_GUARD_S, cwd=cwd)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.fail(f"{what} is missing and `{' '.join(command)}` failed: {error}", pytrace=False)


def _ensure_chromium() -> Path:
    missing = [package for package, path in DEBIAN_PACKAGES.items() if not path.exists()]
    if missing:
        command = ["apt-get", "install", "-y", *missing]
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail(f"{', '.join(missing)} missing: run `{' '.join(command)}` as root", pytrace=False)
        _install(["apt-get", "update"], "the Debian package list")
        _install(command, ", ".join(missing))
    return CHROMIUM


def _ensure_playwright_core() -> Path:
    module = NODE_DIR / "node_modules" / "playwright-core"
    if not module.is_dir():
        if shutil.which("npm") is None:
            pytest.fail("npm is missing: install Node.js 18+ with npm", pytrace=False)
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        _install(["npm", "install", "--no-audit", "--no-fund", PLAYWRIGHT_CORE], "playwright-core", NODE_DIR)
    return module


@pytest.fixture(scope="session")
def browser_tools() -> BrowserTools:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node.js 18+", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return BrowserTools(node, _ensure_playwright_core(), _ensure_chromium(), ARTIFACTS)
