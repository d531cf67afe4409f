"""Fixtures of the unit tests (no broker, no network): a small symbol registry."""

from __future__ import annotations

import pytest

from runtime.symbols import Symbol, SymbolRegistry, parse_registry
from tests.unit.listings import registry_document


@pytest.fixture
def registry() -> SymbolRegistry:
    return parse_registry(registry_document(), "test registry")


@pytest.fixture
def btc(registry: SymbolRegistry) -> Symbol:
    return registry["BTC-USD"]
