"""A partition's genesis: the state it starts with, written once, so the state is a function of the log.

The symbol registry file seeds a new partition; after that the log is the truth (DESIGN.md). A
matcher that finds its partition new (no state snapshot, nothing committed) writes the engine
holding the file's symbols as a state snapshot covering no command, under a key of its own on
`state-snapshots` (compaction keeps it beside the latest snapshot, which has another key), in
the transaction that commits offset 0. Recovery without a later snapshot and ``exchange verify``
start from it; a later edit of the file is reported, never applied to the past.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from matcher.core import SymbolParams
from matcher.recovery import StateSnapshot, engine_state
from runtime.kafka import read_to_end
from schemas import Codec

GENESIS_KEY_SUFFIX: Final = ":genesis"


def genesis_key(partition: int) -> bytes:
    """The `state-snapshots` key of ``partition``'s genesis."""
    return f"{partition}{GENESIS_KEY_SUFFIX}".encode()


def read_genesis(bootstrap: str, topic: str, partition: int, codec: Codec) -> StateSnapshot | None:
    """``partition``'s genesis state, or None when it has none (a partition no matcher has started)."""
    key = genesis_key(partition)
    for message in read_to_end(bootstrap, topic, partition, client_id=f"genesis-{partition}"):
        if message.key() == key:
            _, record = codec.decode(message.value(), message.headers())
            return StateSnapshot(record["orders_offset"], engine_state(record))
    return None


def registry_differences(
    registry: Iterable[SymbolParams], state: Iterable[SymbolParams]
) -> dict[str, list[str]]:
    """How the registry file's symbols of a partition differ from those its state (its log) holds.

    Keys, each present only when not empty: ``not_in_log`` (in the file, never listed: an
    AddSymbol lists it), ``changed`` (listed with other parameters than the file now gives),
    ``not_in_file`` (listed, missing from the file). Halted flags are not compared: halts and
    resumes are commands, and the file says only how a symbol starts.
    """
    in_file = {params.symbol: params._replace(halted=False) for params in registry}
    in_log = {params.symbol: params._replace(halted=False) for params in state}
    differences = {
        "not_in_log": sorted(in_file.keys() - in_log.keys()),
        "changed": sorted(s for s in in_file.keys() & in_log.keys() if in_file[s] != in_log[s]),
        "not_in_file": sorted(in_log.keys() - in_file.keys()),
    }
    return {what: symbols for what, symbols in differences.items() if symbols}
