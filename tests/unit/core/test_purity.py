"""The matching core imports only the standard library and sortedcontainers, nothing its ruff rules ban."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "matcher" / "core"
ALLOWED_THIRD_PARTY = {"sortedcontainers"}


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports (relative imports resolved against matcher.core)."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("matcher.core" if node.level else str(node.module))
    return modules


def test_every_import_in_the_core_is_stdlib_sortedcontainers_or_the_core_itself() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files, f"no Python files under {CORE}"
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names
                or top in ALLOWED_THIRD_PARTY
                or (module == "matcher.core" or module.startswith("matcher.core."))
            )
            assert allowed, f"{path.name} imports {module}"


def test_the_core_imports_nothing_its_lint_rules_ban() -> None:
    config = tomllib.loads((CORE / "ruff.toml").read_text())
    banned = set(config["lint"]["flake8-tidy-imports"]["banned-api"])
    assert {"time", "random", "os"} <= banned  # the rules themselves are still there
    for path in sorted(CORE.glob("*.py")):
        for module in imported_modules(path):
            assert module.split(".")[0] not in banned, f"{path.name} imports {module}"
