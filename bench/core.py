"""`exchange bench core FLOW.csv`: replay a flow from ../shared/bench/orderflow.py through the matching core.

Prints one JSON line with exactly the keys of ../shared/bench/refbook.py (plus
``bytes_per_resting_order`` with ``--memory``), so the totals can be compared key by key and
the speed as a ratio measured in the same run.

Like refbook.py, parsing is not timed: the CSV is translated into core commands first. Each
flow symbol gets a permissive registry entry (min 1 lot, no maximum, no price band) and every
order the same account with self-trade prevention off (the flow has no accounts). The timed
replays only call ``apply``; the totals are then counted from the events of one more replay:
a fill is one Fill event, a cancel one OrderCancelled(USER_REQUESTED), a reject one Rejected
(in these flows, a cancel of an order that no longer rests).
"""

from __future__ import annotations

import argparse
import csv
import gc
import hashlib
import json
import time
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path

from matcher.core import (
    Cancel,
    Command,
    Fill,
    MatchingEngine,
    NewOrder,
    OrderCancelled,
    OrderType,
    Rejected,
    Side,
    SymbolParams,
    TimeInForce,
    command_id,
    reasons,
)
from runtime.errors import UserError

PARTITION = 0
ACCOUNT = "bench"
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", type=Path, help="CSV written by orderflow.py")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays; the best counts")
    parser.add_argument(
        "--memory", action="store_true", help="also measure bytes per resting order (tracemalloc, untimed)"
    )


def run(args: argparse.Namespace) -> int:
    commands, symbols = load_flow(args.flow)
    best = float("inf")
    for _ in range(max(1, args.repeat)):
        engine = MatchingEngine(PARTITION, symbols)
        best = min(best, timed_replay(engine, commands))
    engine = MatchingEngine(PARTITION, symbols)
    result: dict[str, object] = {"actions": len(commands), **count_totals(engine, commands)}
    result["seconds"] = round(best, 4)
    result["actions_per_s"] = round(len(commands) / best)
    if args.memory:
        result["bytes_per_resting_order"] = bytes_per_resting_order(symbols, commands)
    print(json.dumps(result))
    return 0


def load_flow(path: Path) -> tuple[list[tuple[Command, int]], list[SymbolParams]]:
    """The flow in the CSV at `path`, translated (see `translate`)."""
    try:
        with path.open(newline="") as f:
            rows = [
                (r["action"], r["symbol"], r["order_id"], r["side"], r["type"], r["price"], r["qty"])
                for r in csv.DictReader(f)
            ]
        return translate(rows)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot read flow {path}: {exc}") from exc


def translate(rows: Iterable[Sequence[object]]) -> tuple[list[tuple[Command, int]], list[SymbolParams]]:
    """A flow's rows (action, symbol, order_id, side, type, price, qty) as (command, offset) pairs + symbols.

    The offset (and the timestamp) of a row is its index. The flow names orders by its own ids,
    the core by the offset of their NewOrder, so a cancel gets the id the core gave the order.
    """
    commands: list[tuple[Command, int]] = []
    core_ids: dict[int, int] = {}
    symbols: dict[str, SymbolParams] = {}
    for offset, (action, name, flow_id, side, kind, price, qty) in enumerate(rows):
        params = symbols.get(str(name))
        if params is None:
            params = symbols[str(name)] = SymbolParams(str(name))
        # Commands name the symbol by the registry's own string, as a decoder mapping names to
        # registry entries would: one string object, whose hash is computed once.
        symbol = params.symbol
        if action == "cancel":
            commands.append((Cancel(offset, symbol, ACCOUNT, core_ids.get(int(str(flow_id)), -1)), offset))
            continue
        core_ids[int(str(flow_id))] = command_id(PARTITION, offset)
        if kind == "market":
            order = NewOrder(
                offset,
                symbol,
                ACCOUNT,
                _SIDES[str(side)],
                OrderType.MARKET,
                int(str(qty)),
                time_in_force=TimeInForce.IOC,
            )
        else:
            order = NewOrder(
                offset, symbol, ACCOUNT, _SIDES[str(side)], OrderType.LIMIT, int(str(qty)), int(str(price))
            )
        commands.append((order, offset))
    return commands, list(symbols.values())


def timed_replay(engine: MatchingEngine, commands: list[tuple[Command, int]]) -> float:
    """Seconds to apply every command (its events are made, then dropped as a service would once sent)."""
    apply = engine.apply
    gc.collect()
    started = time.perf_counter()
    for command, offset in commands:
        apply(command, offset)
    return time.perf_counter() - started


def count_totals(engine: MatchingEngine, commands: list[tuple[Command, int]]) -> dict[str, object]:
    """refbook.py's totals, counted from the events of one replay, and the final books' hash."""
    fills = fill_qty = cancels = rejects = 0
    for command, offset in commands:
        for event in engine.apply(command, offset):
            if isinstance(event, Fill):
                fills += 1
                fill_qty += event.qty
            elif isinstance(event, OrderCancelled) and event.reason == reasons.USER_REQUESTED:
                cancels += 1
            elif isinstance(event, Rejected):
                rejects += 1
    return {
        "fills": fills,
        "fill_qty": fill_qty,
        "resting": engine.resting_count(),
        "cancels": cancels,
        "rejects": rejects,
        "book_sha256": book_sha256(engine),
    }


def book_sha256(engine: MatchingEngine) -> str:
    """refbook.py's hash of the final L2 books: per symbol, bids then asks, each by ascending price."""
    digest = hashlib.sha256()
    for params in engine.symbols():
        depth = engine.book_depth(params.symbol)
        assert depth is not None
        for name, levels in (("bid", reversed(depth.bids)), ("ask", depth.asks)):
            for price, qty, count in levels:
                digest.update(f"{params.symbol},{name},{price},{qty},{count}\n".encode())
    return digest.hexdigest()


def bytes_per_resting_order(symbols: list[SymbolParams], commands: list[tuple[Command, int]]) -> int:
    """Memory the engine holds at the end of a replay, per resting order (tracemalloc; events dropped)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        engine = MatchingEngine(PARTITION, symbols)
        apply = engine.apply
        for command, offset in commands:
            apply(command, offset)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return round(held / max(1, engine.resting_count()))
