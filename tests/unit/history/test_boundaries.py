"""The history service shares only `schemas` and `runtime` with the other services, as they do."""

from __future__ import annotations

import ast
from pathlib import Path

HISTORY = Path(__file__).resolve().parents[3] / "history"
OTHER_SERVICES = ("gateway", "matcher", "relay")


def test_history_imports_no_other_service() -> None:
    imported = set()
    for path in HISTORY.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)

    assert not imported & set(OTHER_SERVICES)
