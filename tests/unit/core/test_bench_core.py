"""`exchange bench core` counts what refbook.py counts: same totals and book hash on every profile."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from bench.core import count_totals
from exchange.cli import main
from matcher.core import MatchingEngine
from tests.unit.core.flows import ORDERFLOW, generated_flow, orderflow

REFBOOK = ORDERFLOW.with_name("refbook.py")
REFBOOK_KEYS = {
    "actions",
    "fills",
    "fill_qty",
    "resting",
    "cancels",
    "rejects",
    "book_sha256",
    "seconds",
    "actions_per_s",
}


def refbook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refbook", REFBOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("profile", "symbols"), [("mixed", 1), ("cancel-heavy", 1), ("deep", 1), ("sweep", 1), ("mixed", 8)]
)
def test_bench_totals_equal_refbook_totals(profile: str, symbols: int) -> None:
    rows = [
        (
            action,
            symbol,
            int(oid),
            side,
            kind,
            int(price) if price != "" else None,
            int(qty) if qty != "" else 0,
        )
        for action, symbol, oid, side, kind, price, qty in orderflow().generate(profile, 6_000, symbols, 11)
    ]
    expected = refbook().replay(rows)
    commands, params = generated_flow(profile, 6_000, 11, symbols)

    totals = count_totals(MatchingEngine(0, params), commands)

    assert {"actions": len(commands), **totals} == expected


def test_bench_core_prints_one_json_line_with_refbooks_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flow.csv"
    orderflow().main(["--profile", "deep", "--orders", "3000", "--seed", "2", "-o", str(flow)])

    assert main(["bench", "core", str(flow), "--repeat", "1", "--memory"]) == 0

    [line] = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert set(result) == REFBOOK_KEYS | {"bytes_per_resting_order"}
    assert result["actions"] == 3000 and result["bytes_per_resting_order"] > 0


def test_bench_core_names_a_missing_flow_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "core", str(tmp_path / "missing.csv")]) == 2

    assert "missing.csv" in capsys.readouterr().err
