"""The fast engine's index of resting orders by account always equals a scan of its books.

CancelAll, QueryOpenOrders and the open-order limit read the index instead of the book, so the
index must follow every way an order starts or stops resting: rest, fill, self-trade prevention,
cancel, cancel-all, amend (in place, or to the back of a level) and restore from a snapshot.
A random flow of all of them is checked against a full scan after every command.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from matcher.core import (
    Amend,
    Cancel,
    CancelAll,
    Command,
    MatchingEngine,
    NewOrder,
    OrderType,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
    command_id,
)
from tests.unit.core.conftest import CORE_SETTINGS

PARTITION = 0
SYMBOLS = ("AAA", "BBB")
ACCOUNTS = ("alice", "bob", "carol")

orders = st.builds(
    lambda symbol, account, side, qty, price, tif, stp: NewOrder(
        0, symbol, account, side, OrderType.LIMIT, qty, price, tif, False, stp
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(Side),
    st.integers(1, 6),
    st.integers(97, 103),
    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC]),
    st.sampled_from(SelfTradePrevention),
)
# What to do to an earlier command's order (by its offset): cancel, amend, or cancel all of its account's.
actions = st.tuples(
    st.sampled_from(["cancel", "amend", "cancel_all", "restore"]),
    st.integers(0, 200),
    st.one_of(st.none(), st.integers(1, 8)),
    st.one_of(st.none(), st.integers(97, 103)),
)
flows = st.lists(st.one_of(orders, actions), min_size=1, max_size=60)


def scanned(engine: MatchingEngine, symbol: str) -> dict[str, list[int]]:
    """Every resting order id of `symbol` by account, oldest order id first: a full scan of its book."""
    book = engine._books[symbol]  # the book itself, on purpose: the scan must not use the index
    resting = [order for own in (book.bids, book.asks) for level in own.levels.values() for order in level]
    return {
        account: sorted(order.order_id for order in resting if order.account == account)
        for account in ACCOUNTS
    }


def indexed(engine: MatchingEngine, symbol: str) -> dict[str, list[int]]:
    """What the index answers: each account's open orders on `symbol`."""
    return {account: [o.order_id for o in engine.open_orders(account, symbol)] for account in ACCOUNTS}


def command_for(step: Any, offset: int, placed: list[tuple[int, NewOrder]]) -> Command | None:
    """The command of one step at `offset` (None: restore from a snapshot instead)."""
    if isinstance(step, NewOrder):
        placed.append((offset, step))
        return step._replace(ts=offset)
    kind, pick, qty, price = step
    if not placed or kind == "restore":
        return None
    order_offset, target = placed[pick % len(placed)]
    order_id = command_id(PARTITION, order_offset)
    if kind == "cancel":
        return Cancel(offset, target.symbol, target.account, order_id)
    if kind == "amend":
        return Amend(offset, target.symbol, target.account, order_id, qty=qty, price=price)
    return CancelAll(offset, target.symbol, target.account)


@given(flow=flows)
@CORE_SETTINGS
def test_the_index_by_account_equals_a_full_scan_after_every_command(flow: list[Any]) -> None:
    engine = MatchingEngine(PARTITION, [SymbolParams(symbol) for symbol in SYMBOLS])
    placed: list[tuple[int, NewOrder]] = []
    for offset, step in enumerate(flow):
        command = command_for(step, offset, placed)
        if command is None:
            restored = MatchingEngine(PARTITION)
            restored.restore(engine.snapshot())
            engine = restored
        else:
            engine.apply(command, offset)
        for symbol in SYMBOLS:
            assert indexed(engine, symbol) == scanned(engine, symbol)
