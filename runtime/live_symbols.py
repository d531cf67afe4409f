"""The symbols a gateway or a relay knows: the registry file, then every change the matchers committed.

The file seeds the symbols every partition starts with. After that the matchers are the truth:
an accepted AddSymbol, HaltSymbol or ResumeSymbol leaves a ``SymbolUpdate`` on the compacted
`symbols` topic in the same transaction as its reply, and every gateway and relay follows that topic, so a
symbol added or halted while they run is known within moments, without a restart.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from runtime.symbols import DomainError, Symbol, SymbolRegistry, SymbolStatus, parse_symbol

_FROM_FILE = -1  # the offset of a listing that came from the file: before any command


class LiveRegistry:
    """Symbols by name with their current status; read by requests, updated by the follower thread."""

    def __init__(self, seed: SymbolRegistry) -> None:
        self.partition_count = seed.partition_count
        self._lock = threading.Lock()
        self._listings: dict[str, tuple[int, Symbol]] = {s.name: (_FROM_FILE, s) for s in seed}
        self._statuses: dict[str, tuple[int, bool]] = {}  # symbol -> (command offset, halted)
        self._current: dict[str, Symbol] = {s.name: s for s in seed}

    def get(self, name: str) -> Symbol | None:
        """The symbol called ``name`` with its current status, or None."""
        return self._current.get(name)

    def symbols(self) -> list[Symbol]:
        """Every known symbol, by name."""
        current = self._current
        return [current[name] for name in sorted(current)]

    def apply(self, update: Mapping[str, Any]) -> Symbol | None:
        """Take one ``SymbolUpdate`` record; the symbol as it now stands (None if it is unusable)."""
        name, offset = update["symbol"], update["command_offset"]
        with self._lock:
            if update.get("params") is not None:
                try:
                    listed = parse_symbol(name, dict(update["params"]), self.partition_count)
                except DomainError:
                    return None  # the matcher validated it with the same code; a newer registry shape
                self._listings[name] = (offset, listed)
            if update.get("halted") is not None:
                self._statuses[name] = (offset, bool(update["halted"]))
            if name not in self._listings:
                return None  # a status of a symbol whose listing is not known here
            symbol = self._effective(name)
            current = dict(self._current)
            current[name] = symbol
            self._current = current  # readers see the old or the new mapping, never a half-built one
            return symbol

    def _effective(self, name: str) -> Symbol:
        listed_at, symbol = self._listings[name]
        status = self._statuses.get(name)
        if status is None or status[0] < listed_at:
            return symbol
        wanted = SymbolStatus.HALTED if status[1] else SymbolStatus.TRADING
        return symbol if symbol.status is wanted else dataclasses.replace(symbol, status=wanted)
