"""Model-based test: the fast engine and the reference engine must answer every command identically.

A Hypothesis state machine sends random sequences of every command type (new orders of every
kind, cancels, amends, cancel-all, halts, symbols added at run time, queries, and restores
from a snapshot) to both, compares every event, and after every step checks the fast engine's
invariants and that both hold the same books, open orders and client order ids. A second
machine runs the same with a memory of done client order ids a few commands long.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hypothesis import event as event_note
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule

from matcher.core import (
    CLIENT_ID_MEMORY_COMMANDS,
    AddSymbol,
    Amend,
    Cancel,
    CancelAll,
    Command,
    Halt,
    MatchingEngine,
    NewOrder,
    OrderType,
    QueryBook,
    QueryOpenOrders,
    QueryOrder,
    Resume,
    SelfTradePrevention,
    Side,
    SymbolParams,
    TimeInForce,
    command_id,
)
from matcher.core.reference import ReferenceEngine
from tests.unit.core.conftest import CORE_SETTINGS

PARTITION = 1
SYMBOLS = [
    # Band 97..103 at first; an account's fifth resting order is refused.
    SymbolParams("AAA", min_qty=1, max_qty=20, band_bps=300, reference_price=100, max_open_orders=4),
    SymbolParams("BBB"),
]
ACCOUNTS = ("alice", "bob")
CLIENT_IDS = ("c0", "c1", "c2", "c3")


class Placed(NamedTuple):
    order_id: int
    symbol: str
    account: str


def _mostly_right(order: Placed, other_symbol: str, other_account: str, mix: int) -> tuple[str, str]:
    """The order's own symbol and account, except now and then another one."""
    return (other_symbol if mix == 1 else order.symbol), (other_account if mix == 2 else order.account)


def mostly(valid: st.SearchStrategy[Any], *invalid: object) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten, otherwise one of the `invalid` values."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(invalid) if n == 0 else valid)


symbols = st.sampled_from(["AAA", "AAA", "BBB", "BBB", "CCC"])  # CCC exists once AddSymbol made it
trading_symbols = st.sampled_from(["AAA", "BBB"])
accounts = st.sampled_from(ACCOUNTS)
client_ids = st.one_of(st.none(), st.sampled_from(CLIENT_IDS))
valid_prices = st.integers(96, 104)
valid_quantities = st.integers(1, 8)
stp_modes = st.sampled_from(SelfTradePrevention)
new_quantities = st.one_of(st.none(), valid_quantities, st.just(0))
new_prices = st.one_of(st.none(), valid_prices, st.just(111))


class EngineVsReference(RuleBasedStateMachine):
    """Three rules place orders (passive, aggressive, anything at all), so books fill up and trade."""

    orders = Bundle("orders")
    client_id_memory = CLIENT_ID_MEMORY_COMMANDS

    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine(PARTITION, SYMBOLS, client_id_memory=self.client_id_memory)
        self.reference = ReferenceEngine(PARTITION, SYMBOLS, client_id_memory=self.client_id_memory)
        self.offset = 0

    def send(self, command: Command) -> None:
        expected = self.reference.apply(command, self.offset)
        actual = self.engine.apply(command, self.offset)
        self.offset += 1
        assert actual == expected, f"{command}\nengine:    {actual}\nreference: {expected}"
        for event in actual:
            reason = getattr(event, "reason", None)
            label = type(event).__name__ + (f"/{reason}" if reason else "")
            event_note(label)

    def place(self, order: NewOrder) -> Placed:
        placed = Placed(command_id(PARTITION, self.offset), order.symbol, order.account)
        self.send(order)
        return placed

    @initialize(
        target=orders,
        book=st.lists(
            st.tuples(
                trading_symbols, accounts, st.sampled_from(Side), valid_quantities, st.integers(97, 103)
            ),
            min_size=1,
            max_size=10,
        ),
    )
    def seed_books(self, book: list[tuple[str, str, Side, int, int]]) -> Any:
        ids = [
            self.place(NewOrder(self.offset, symbol, account, side, OrderType.LIMIT, qty, price))
            for symbol, account, side, qty, price in book
        ]
        return multiple(*ids)

    @rule(
        target=orders,
        symbol=trading_symbols,
        account=accounts,
        side=st.sampled_from(Side),
        qty=valid_quantities,
        price=valid_prices,
        post_only=st.booleans(),
        cid=client_ids,
    )
    def passive_order(
        self, symbol: str, account: str, side: Side, qty: int, price: int, post_only: bool, cid: str | None
    ) -> Placed:
        return self.place(
            NewOrder(
                self.offset,
                symbol,
                account,
                side,
                OrderType.LIMIT,
                qty,
                price,
                post_only=post_only,
                client_order_id=cid,
            )
        )

    @rule(
        target=orders,
        symbol=trading_symbols,
        account=accounts,
        side=st.sampled_from(Side),
        qty=valid_quantities,
        price=st.one_of(st.none(), valid_prices),
        tif=st.sampled_from(TimeInForce),
        stp=stp_modes,
        cid=client_ids,
    )
    def aggressive_order(
        self,
        symbol: str,
        account: str,
        side: Side,
        qty: int,
        price: int | None,
        tif: TimeInForce,
        stp: SelfTradePrevention,
        cid: str | None,
    ) -> Placed:
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        return self.place(
            NewOrder(self.offset, symbol, account, side, order_type, qty * 2, price, tif, False, stp, cid)
        )

    @rule(
        target=orders,
        symbol=symbols,
        account=accounts,
        side=mostly(st.sampled_from(Side), 1),  # a plain int is not a Side
        order_type=mostly(st.sampled_from(OrderType), 3),
        qty=mostly(valid_quantities, 0, -2, 25, 2.0),
        price=mostly(valid_prices, 0, 90, 120, None),
        tif=mostly(st.sampled_from(TimeInForce), 0),
        post_only=st.booleans(),
        stp=stp_modes,
        cid=client_ids,
    )
    def any_order(
        self,
        symbol: str,
        account: str,
        side: Any,
        order_type: Any,
        qty: Any,
        price: Any,
        tif: Any,
        post_only: bool,
        stp: SelfTradePrevention,
        cid: str | None,
    ) -> Placed:
        return self.place(
            NewOrder(self.offset, symbol, account, side, order_type, qty, price, tif, post_only, stp, cid)
        )

    @rule(
        order=orders,
        other_symbol=symbols,
        other_account=accounts,
        mix=st.integers(0, 9),
        cid=st.sampled_from(CLIENT_IDS),
    )
    def cancel(self, order: Placed, other_symbol: str, other_account: str, mix: int, cid: str) -> None:
        symbol, account = _mostly_right(order, other_symbol, other_account, mix)
        if mix == 9:
            self.send(Cancel(self.offset, symbol, account, client_order_id=cid))
        else:
            self.send(Cancel(self.offset, symbol, account, order.order_id if mix != 8 else 777))

    @rule(
        order=orders,
        other_symbol=symbols,
        other_account=accounts,
        mix=st.integers(0, 9),
        qty=new_quantities,
        price=new_prices,
        cid=st.sampled_from(CLIENT_IDS),
    )
    def amend(
        self,
        order: Placed,
        other_symbol: str,
        other_account: str,
        mix: int,
        qty: int | None,
        price: int | None,
        cid: str,
    ) -> None:
        symbol, account = _mostly_right(order, other_symbol, other_account, mix)
        named = (None, cid) if mix == 9 else (order.order_id, None)
        self.send(Amend(self.offset, symbol, account, *named, qty=qty, price=price))

    @rule(symbol=symbols, account=accounts)
    def cancel_all(self, symbol: str, account: str) -> None:
        self.send(CancelAll(self.offset, symbol, account))

    @rule(
        symbol=symbols,
        which=st.integers(0, 9),
        min_qty=st.integers(0, 3),
        band_bps=st.sampled_from([0, 300]),
        max_open=st.integers(-1, 3),
    )
    def admin(self, symbol: str, which: int, min_qty: int, band_bps: int, max_open: int) -> None:
        # Halts are rare, so that most steps see a trading book; resumes mostly find nothing to resume.
        if which == 0:
            self.send(Halt(self.offset, symbol))
        elif which < 6:
            self.send(Resume(self.offset, symbol))
        else:
            self.send(
                AddSymbol(self.offset, SymbolParams(symbol, min_qty, 30, band_bps, 100, False, max_open))
            )

    @rule(
        which=st.integers(0, 2),
        order=orders,
        symbol=symbols,
        account=st.one_of(st.none(), accounts),
        cid=client_ids,
        depth=st.one_of(st.none(), st.integers(-1, 3)),
    )
    def query(
        self, which: int, order: Placed, symbol: str, account: str | None, cid: str | None, depth: int | None
    ) -> None:
        if which == 0:
            named = (None, cid) if cid is not None else (order.order_id, None)
            self.send(QueryOrder(self.offset, order.symbol, account, *named))
        elif which == 1:
            self.send(QueryOpenOrders(self.offset, account or "alice", symbol if depth is None else None))
        else:
            self.send(QueryBook(self.offset, symbol, depth))

    @rule()
    def restore_from_snapshot(self) -> None:
        restored = MatchingEngine(PARTITION, client_id_memory=self.client_id_memory)
        restored.restore(self.engine.snapshot())
        assert restored.state_hash() == self.engine.state_hash()
        self.engine = restored

    @invariant()
    def engine_state_is_valid(self) -> None:
        self.engine.validate()

    @invariant()
    def both_hold_the_same_state(self) -> None:
        engine, reference = self.engine, self.reference
        assert engine.resting_count() == reference.resting_count()
        assert engine.level_counts() == reference.level_counts()
        for params in engine.symbols():
            assert engine.book_depth(params.symbol) == reference.book_depth(params.symbol)
        for account in ACCOUNTS:
            assert engine.open_orders(account) == reference.open_orders(account)
            for params in engine.symbols():
                mine = engine.open_orders(account, params.symbol)
                assert mine == reference.open_orders(account, params.symbol)
            for cid in CLIENT_IDS:
                assert engine.order_by_client_id(account, cid) == reference.order_by_client_id(account, cid)


TestEngineVsReference = EngineVsReference.TestCase
TestEngineVsReference.settings = CORE_SETTINGS


class ForgetfulEngineVsReference(EngineVsReference):
    """The same, remembering done orders by client id for a few commands only: both must forget alike."""

    client_id_memory = 3


TestForgetfulEngineVsReference = ForgetfulEngineVsReference.TestCase
TestForgetfulEngineVsReference.settings = CORE_SETTINGS
