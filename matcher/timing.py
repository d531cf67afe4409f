"""Where a transaction's time goes: the wall-clock moments of its commands and of its commit.

A command's way through the matcher, each step ending at a recorded moment (``time.time_ns()``,
comparable with the ``origin.ts_ns`` a gateway stamps when it produces the command):

- **taken**: ``next_batch`` handed it over (fetched from the broker, gathered into a take);
- **applied**: the engine matched it and its outputs are encoded;
- **begun**: the transaction that carries it began (until then it waited for its batch to
  close, or for the previous transaction's commit);
- **produced**: every record of the transaction is queued in the producer (local work);
- **offsets_sent**: the consumed offset joined the transaction (coordinator round trips);
- **committed**: the broker confirmed the commit; readers see the outputs from then on.

Recording costs a clock read per take and four per transaction; the matcher keeps them always,
exports the transaction phases as a histogram and logs a transaction slower than its threshold
with every phase, so a spike names its cause.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import NamedTuple

# The phases of one transaction, in order: each is the time from the previous moment to its own.
TRANSACTION_PHASES = ("produce", "send_offsets", "commit")


class Take(NamedTuple):
    """Commands ``first``..``end - 1`` taken at ``taken_ns`` and applied by ``applied_ns``."""

    first: int
    end: int
    taken_ns: int
    applied_ns: int


@dataclass
class TransactionTimes:
    """The takes one transaction carries and the moments of its commit (0 until reached)."""

    takes: list[Take] = field(default_factory=list)
    begun_ns: int = 0
    produced_ns: int = 0
    offsets_sent_ns: int = 0
    committed_ns: int = 0

    @property
    def first_taken_ns(self) -> int:
        return self.takes[0].taken_ns if self.takes else self.begun_ns

    def phases_ms(self) -> dict[str, float]:
        """Each step of the transaction in milliseconds, from its first command's take to the commit."""
        last_applied = self.takes[-1].applied_ns if self.takes else self.begun_ns
        moments = {
            "apply": (self.first_taken_ns, last_applied),
            "batch_wait": (last_applied, self.begun_ns),
            "produce": (self.begun_ns, self.produced_ns),
            "send_offsets": (self.produced_ns, self.offsets_sent_ns),
            "commit": (self.offsets_sent_ns, self.committed_ns),
        }
        return {name: round((end - start) / 1e6, 3) for name, (start, end) in moments.items()}

    def total_s(self) -> float:
        """From the first command's take to the commit, in seconds."""
        return (self.committed_ns - self.first_taken_ns) / 1e9

    def transaction_phases_s(self) -> dict[str, float]:
        """The commit's own phases (``TRANSACTION_PHASES``), in seconds."""
        ends = (self.produced_ns, self.offsets_sent_ns, self.committed_ns)
        starts = (self.begun_ns, *ends[:-1])
        steps = zip(TRANSACTION_PHASES, starts, ends, strict=True)
        return {name: (end - start) / 1e9 for name, start, end in steps}


class CommandMoments(NamedTuple):
    """The moments of one command, found by its offset in a run's transactions."""

    taken_ns: int
    applied_ns: int
    begun_ns: int
    produced_ns: int
    offsets_sent_ns: int
    committed_ns: int


class TimingLog:
    """Every committed transaction's times, looked up by command offset (for benchmarks)."""

    def __init__(self) -> None:
        self._ends: list[int] = []
        self._takes: list[tuple[Take, TransactionTimes]] = []

    def add(self, times: TransactionTimes) -> None:
        """Note a committed transaction; one that commits offsets again (after an abort) replaces them."""
        for take in times.takes:
            keep = bisect.bisect_right(self._ends, take.first)
            del self._ends[keep:], self._takes[keep:]
            self._ends.append(take.end)
            self._takes.append((take, times))

    def transactions(self, first: int) -> list[TransactionTimes]:
        """The transactions that carried commands from offset ``first`` on, once each, in order."""
        start = bisect.bisect_right(self._ends, first)
        return list({id(times): times for _, times in self._takes[start:]}.values())

    def moments(self, offset: int | None) -> CommandMoments | None:
        """The moments of the command at ``offset``, or None if no committed transaction carried it
        (or the offset is not known)."""
        if offset is None:
            return None
        at = bisect.bisect_right(self._ends, offset)
        if at == len(self._takes):
            return None
        take, times = self._takes[at]
        if not take.first <= offset < take.end:
            return None
        return CommandMoments(
            take.taken_ns,
            take.applied_ns,
            times.begun_ns,
            times.produced_ns,
            times.offsets_sent_ns,
            times.committed_ns,
        )
