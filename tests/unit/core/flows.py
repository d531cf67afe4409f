"""Order flows from ../shared/bench/orderflow.py, as core commands, for the replay tests.

``diversify`` spreads a flow over three accounts and gives its orders every time in force,
self-trade prevention mode and (now and then) a client order id, so that a replay walks
through far more of the engine than the benchmark's single account does.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import ModuleType

from bench.core import translate
from matcher.core import (
    Cancel,
    Command,
    MatchingEngine,
    NewOrder,
    OrderType,
    SelfTradePrevention,
    SymbolParams,
    TimeInForce,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ORDERFLOW = PROJECT_ROOT.parent / "shared" / "bench" / "orderflow.py"

Flow = list[tuple[Command, int]]


@cache
def orderflow() -> ModuleType:
    """../shared/bench/orderflow.py, imported by path (it is a script, not a package)."""
    if not ORDERFLOW.is_file():
        raise FileNotFoundError(f"{ORDERFLOW} is missing: the shared folder must sit beside the project")
    spec = importlib.util.spec_from_file_location("orderflow", ORDERFLOW)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_flow(
    profile: str, actions: int, seed: int, symbols: int = 1
) -> tuple[Flow, list[SymbolParams]]:
    """orderflow.py's flow for these arguments, as (command, offset) pairs, and its symbols."""
    return translate(orderflow().generate(profile, actions, symbols, seed))


def diversify(flow: Flow) -> Flow:
    """The same flow over three accounts, with every TIF, STP mode and some client order ids."""
    accounts: dict[int, str] = {}
    modes = list(SelfTradePrevention)
    out: Flow = []
    for original, offset in flow:
        command = original
        if type(original) is NewOrder:
            account = f"acct-{offset % 3}"
            accounts[offset] = account
            tif = original.time_in_force
            if original.order_type is OrderType.LIMIT and offset % 7 == 0:
                tif = TimeInForce.IOC
            elif offset % 11 == 0:
                tif = TimeInForce.FOK
            command = original._replace(
                account=account,
                time_in_force=tif,
                stp=modes[offset % len(modes)],
                client_order_id=f"c-{offset % 500}" if offset % 4 == 0 else None,
            )
        elif type(original) is Cancel and original.order_id is not None:
            command = original._replace(account=accounts.get(original.order_id & (2**48 - 1), "acct-0"))
        out.append((command, offset))
    return out


def replay_digest(engine: MatchingEngine, flow: Iterable[tuple[Command, int]]) -> str:
    """SHA-256 of the canonical bytes (repr) of every event list the flow produces, in order."""
    digest = hashlib.sha256()
    for command, offset in flow:
        digest.update(repr(engine.apply(command, offset)).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def seed_digests(seeds: Iterable[int], actions: int) -> list[str]:
    """One replay digest per seed of a diversified mixed flow (also run in a child process by the tests)."""
    digests = []
    for seed in seeds:
        flow, symbols = generated_flow("mixed", actions, seed, symbols=1 + seed % 3)
        digests.append(replay_digest(MatchingEngine(0, symbols), diversify(flow)))
    return digests
