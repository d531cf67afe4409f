"""Engine: what every matching engine of the core does, the fast one and the reference alike.

``apply`` runs one command and returns its events; the queries read the state and change
nothing. Both ``MatchingEngine`` (``engine.py``) and ``ReferenceEngine`` (``reference.py``)
implement it, and the specification tests run over both. Only the fast engine goes further:
``validate``, ``state_hash``, ``snapshot``/``restore`` and the registry ``symbols()``.
``matcher.core.implementations`` lists the engines; mypy checks each against this there.
"""

from __future__ import annotations

from typing import Protocol

from matcher.core.commands import Command, SymbolParams
from matcher.core.events import BookDepth, Event, OrderState


class Engine(Protocol):
    """Every symbol of one partition of the ``orders`` topic, matched by price and then time."""

    @property
    def partition(self) -> int:
        """The ``orders`` partition: a new order's id is ``command_id(partition, offset)``."""

    def apply(self, command: Command, offset: int) -> list[Event]:
        """Run `command`, read at `offset` (strictly increasing); return its events in order."""

    def book_depth(self, symbol: str, depth: int | None = None, ts: int = 0) -> BookDepth | None:
        """The L2 book of `symbol` to `depth` levels per side (None = all); None for an unknown symbol."""

    def open_orders(self, account: str, symbol: str | None = None) -> tuple[OrderState, ...]:
        """The account's open orders (on `symbol`, or on every symbol), oldest order id first."""

    def order_state(self, order_id: int) -> OrderState | None:
        """An open order's state; None when no order with this id is open."""

    def order_by_client_id(self, account: str, client_order_id: str) -> OrderState | None:
        """The state of the account's order with this client order id, open or still remembered."""

    def resting_count(self) -> int:
        """How many orders rest on all books of the partition."""

    def level_counts(self) -> tuple[int, int]:
        """How many price levels the bids and the asks of all books of the partition have."""


class EngineFactory(Protocol):
    """How an engine is made (the engine classes are factories): one partition, its symbols."""

    def __call__(self, partition: int, symbols: list[SymbolParams], *, client_id_memory: int = ...) -> Engine:
        """An engine with no orders; `client_id_memory` other than the default is for tests only."""
