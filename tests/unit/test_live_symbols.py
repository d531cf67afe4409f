"""The live registry: the file's symbols, then the listings and statuses on `symbols`."""

from __future__ import annotations

from typing import Any

from runtime.live_symbols import LiveRegistry
from runtime.symbols import SymbolRegistry, SymbolStatus
from tests.unit.listings import btc_params


def _listing(symbol: str, offset: int, **changes: Any) -> dict[str, Any]:
    """A SymbolUpdate of an accepted AddSymbol at ``offset``."""
    params = btc_params(**{"partition": 2, "reference_price": "0.45", **changes})
    return {"symbol": symbol, "command_offset": offset, "ts_ns": 1, "params": params, "halted": None}


def _status(symbol: str, offset: int, *, halted: bool) -> dict[str, Any]:
    """A SymbolUpdate of an accepted HaltSymbol (halted) or ResumeSymbol (not halted) at ``offset``."""
    return {"symbol": symbol, "command_offset": offset, "ts_ns": 1, "params": None, "halted": halted}


def test_a_new_registry_knows_the_files_symbols(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    assert live.get("BTC-USD") == registry["BTC-USD"]


def test_the_symbols_are_listed_by_name(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    assert [symbol.name for symbol in live.symbols()] == ["BRK.B", "BTC-USD", "ETH-USD"]


def test_a_new_registry_has_the_files_partition_count(registry: SymbolRegistry) -> None:
    assert LiveRegistry(registry).partition_count == 4


def test_an_unknown_name_finds_nothing(registry: SymbolRegistry) -> None:
    assert LiveRegistry(registry).get("ADA-USD") is None


def test_a_listing_adds_its_symbol(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    added = live.apply(_listing("ADA-USD", 7))

    assert added is not None
    assert (added.name, added.partition, added.status) == ("ADA-USD", 2, SymbolStatus.TRADING)
    assert live.get("ADA-USD") == added


def test_a_halt_halts_a_trading_symbol(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    halted = live.apply(_status("BTC-USD", 3, halted=True))

    assert halted is not None
    assert halted.status is SymbolStatus.HALTED
    assert live.get("BTC-USD") == halted


def test_a_resume_after_a_halt_makes_the_symbol_trade_again(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)
    live.apply(_status("BTC-USD", 3, halted=True))

    resumed = live.apply(_status("BTC-USD", 4, halted=False))

    assert resumed is not None
    assert resumed.status is SymbolStatus.TRADING


def test_a_resume_lifts_a_halt_from_the_file(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    resumed = live.apply(_status("BRK.B", 0, halted=False))

    assert resumed is not None
    assert resumed.status is SymbolStatus.TRADING


def test_a_status_older_than_the_listing_does_not_override_it(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)
    live.apply(_listing("ADA-USD", 10, status="trading"))

    current = live.apply(_status("ADA-USD", 5, halted=True))

    assert current is not None
    assert current.status is SymbolStatus.TRADING
    assert live.get("ADA-USD") == current


def test_a_newer_status_read_before_its_listing_applies_once_the_listing_arrives(
    registry: SymbolRegistry,
) -> None:
    live = LiveRegistry(registry)
    live.apply(_status("ADA-USD", 12, halted=True))

    listed = live.apply(_listing("ADA-USD", 10, status="trading"))

    assert listed is not None
    assert listed.status is SymbolStatus.HALTED


def test_a_status_of_an_unknown_symbol_returns_none_and_adds_nothing(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    result = live.apply(_status("ADA-USD", 3, halted=True))

    assert result is None
    assert live.get("ADA-USD") is None
    assert [symbol.name for symbol in live.symbols()] == ["BRK.B", "BTC-USD", "ETH-USD"]


def test_a_listing_with_invalid_params_is_ignored(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    result = live.apply(_listing("ADA-USD", 7, reference_price="0.455"))  # off the 0.01 tick

    assert result is None
    assert live.get("ADA-USD") is None


def test_a_listing_on_a_partition_beyond_the_partition_count_is_ignored(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    result = live.apply(_listing("ADA-USD", 7, partition=4))

    assert result is None
    assert live.get("ADA-USD") is None


def test_an_invalid_listing_of_a_known_symbol_leaves_it_unchanged(registry: SymbolRegistry) -> None:
    live = LiveRegistry(registry)

    live.apply(_listing("BTC-USD", 7, tick_size="0"))

    assert live.get("BTC-USD") == registry["BTC-USD"]
