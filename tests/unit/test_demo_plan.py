"""The demo market's plan: inside every symbol limit whatever fills, and the same commands for a seed."""

from __future__ import annotations

import itertools
import random

import pytest

from exchange.demo import Cancel, Command, Place, Role, SymbolPlan, plan_commands
from runtime.symbols import Symbol, parse_symbol

STEPS = 3000


def _symbol(max_open_orders: int, band_percent: str = "10") -> Symbol:
    params = {
        "partition": 0,
        "tick_size": "0.5",
        "lot_size": "0.01",
        "min_qty": "0.03",
        "max_qty": "0.1",
        "reference_price": "100.0",
        "band_percent": band_percent,
        "status": "trading",
        "max_open_orders": max_open_orders,
    }
    return parse_symbol("DEMO-1", params, 1)


def _commands(symbol: Symbol, *, shared: bool, seed: int = 1, levels: int = 5) -> list[Command]:
    plan = SymbolPlan(symbol, random.Random(seed), levels=levels, shared_account=shared)
    return list(itertools.islice(plan_commands([plan]), STEPS))


def _most_ever_open(commands: list[Command], accounts: dict[Role, str]) -> int:
    """Per account, the most GTC orders that could rest at once if none of them ever filled."""
    open_refs: dict[str, set[int]] = {account: set() for account in accounts.values()}
    most = 0
    for command in commands:
        refs = open_refs[accounts[command.role]]
        if isinstance(command, Cancel):
            refs.discard(command.ref)
        elif command.time_in_force == "GTC":
            refs.add(command.ref)
        most = max(most, *(len(r) for r in open_refs.values()))
    return most


@pytest.mark.parametrize("max_open_orders", [1, 2, 3, 4, 7, 200])
@pytest.mark.parametrize("shared", [True, False])
def test_an_account_never_has_more_orders_open_than_the_symbol_allows(
    max_open_orders: int, shared: bool
) -> None:
    accounts: dict[Role, str] = {"maker": "one", "taker": "one" if shared else "two"}

    commands = _commands(_symbol(max_open_orders), shared=shared)

    assert _most_ever_open(commands, accounts) <= max_open_orders


@pytest.mark.parametrize("band_percent", ["10", "1", "0"])
def test_every_order_is_on_tick_and_lot_inside_the_band_and_the_quantity_limits(band_percent: str) -> None:
    symbol = _symbol(0, band_percent)
    band_ticks = symbol.reference_price_ticks * symbol.band_bps // 10_000

    places = [c for c in _commands(symbol, shared=False) if isinstance(c, Place)]

    for place in places:
        lots = symbol.qty_to_lots(place.quantity)  # raises off lot
        assert symbol.min_qty_lots <= lots <= symbol.max_qty_lots
        if place.price is not None:
            ticks = symbol.price_to_ticks(place.price)  # raises off tick
            assert ticks >= 1
            if band_ticks:
                assert abs(ticks - symbol.reference_price_ticks) <= band_ticks


def test_the_maker_quotes_both_sides_first_and_the_takers_cross() -> None:
    commands = _commands(_symbol(0), shared=False)
    opening = commands[:10]
    takers = [c for c in commands if isinstance(c, Place) and c.role == "taker"]

    assert {(c.side, c.role) for c in opening if isinstance(c, Place)} == {
        ("buy", "maker"),
        ("sell", "maker"),
    }
    assert {c.type for c in takers} == {"market", "limit"}
    assert {c.time_in_force for c in takers} == {"IOC", "GTC"}


def test_a_seed_decides_every_command() -> None:
    symbol = _symbol(200)

    assert _commands(symbol, shared=True, seed=5) == _commands(symbol, shared=True, seed=5)
    assert _commands(symbol, shared=True, seed=5) != _commands(symbol, shared=True, seed=6)
