"""`exchange bench snapshot-memory --resting N`: the memory a forked state snapshot costs.

A state snapshot is written by a forked child (``matcher.snapshots.SnapshotWriter``). After the
fork, parent and child share every page; a page either of them writes is copied. The child
writes far more than the objects it creates: reading an object changes its reference count, so
every page holding an order it serializes is copied too. What the child costs is therefore its
**private dirty** memory (``Private_Dirty`` of ``/proc/<child>/smaps_rollup``), not its RSS:
a copied page replaces the shared one in its page table and leaves the RSS unchanged.

Setup (untimed): an engine with N resting, non-crossing limit orders of one symbol, the same
orders as ``exchange bench recovery`` builds (``bench.recovery.resting_rows``, each with its
client order id), applied directly through the core's ``apply``; then, as the matcher does after
recovery, a full collection and ``gc.freeze()`` (``--unfrozen`` leaves them out). The parent's
engine heap is its RSS growth from building the book.

Then one snapshot is started exactly as the matcher starts it, and the child's smaps_rollup is
sampled every ``--sample-ms`` until the record is back. The parent is idle meanwhile, so the
private pages counted are the child's own. A matching parent also copies the pages it changes,
each page at most once between the two of them: at worst every page it had at the fork, plus
what the child allocated (its peak RSS growth), which ``busy_parent_ratio`` reports.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from pathlib import Path

from bench.pipeline import positive_int
from bench.recovery import SYMBOL, resting_rows
from bench.wireflow import BASE_TS_NS, account_of
from matcher.core import MatchingEngine, NewOrder, OrderType, Side, SymbolParams
from matcher.snapshots import SnapshotWriter
from runtime.errors import UserError
from schemas import default_codec

PARTITION = 0
GUARD_S = 600.0


def build_engine(resting: int) -> MatchingEngine:
    """An engine of ``resting`` resting orders: bench recovery's book, applied through the core."""
    engine = MatchingEngine(PARTITION, [SymbolParams(SYMBOL)])
    for row in resting_rows(resting):
        assert row.price is not None
        command = NewOrder(
            BASE_TS_NS + row.seq * 1_000,  # as bench.wireflow stamps them
            row.symbol,
            account_of(row.order_id),
            Side.BUY if row.side == "buy" else Side.SELL,
            OrderType.LIMIT,
            row.qty,
            row.price,
            client_order_id=f"o{row.order_id}",
        )
        engine.apply(command, row.seq)
    if engine.resting_count() != resting:
        raise AssertionError(f"{engine.resting_count()} orders rest, {resting} were placed")
    return engine


def proc_kb(path: str, *names: str) -> dict[str, int] | None:
    """Fields (in kB) of a ``/proc`` file of ``Name: value kB`` lines; None once the process is gone."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    found = {name: rest for name, _, rest in (line.partition(":") for line in lines) if name in names}
    return {name: int(found[name].split()[0]) for name in names} if len(found) == len(names) else None


def own_kb(name: str) -> int:
    """One field of this process's ``smaps_rollup``, after a full collection."""
    gc.collect()
    fields = proc_kb("/proc/self/smaps_rollup", name)
    if fields is None:
        raise UserError("/proc/self/smaps_rollup is not readable: this benchmark needs Linux")
    return fields[name]


class ChildMemory:
    """What the samples of a child's memory found: its peak private pages, and its RSS growth."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples = 0
        self.peak_private_kb = 0
        self.rss_at_fork_kb: int | None = None  # the first sample's
        self.peak_rss_kb = 0

    def sample(self) -> None:
        rollup = proc_kb(f"/proc/{self.pid}/smaps_rollup", "Private_Dirty")
        status = proc_kb(f"/proc/{self.pid}/status", "VmRSS", "VmHWM")
        if rollup is None or status is None:  # exited, not yet reaped
            return
        self.samples += 1
        self.peak_private_kb = max(self.peak_private_kb, rollup["Private_Dirty"])
        if self.rss_at_fork_kb is None:
            self.rss_at_fork_kb = status["VmRSS"]
        self.peak_rss_kb = max(self.peak_rss_kb, status["VmHWM"])

    @property
    def allocated_kb(self) -> int:
        """Its peak RSS growth: what it allocated (a copied page replaces a shared one in the RSS)."""
        return self.peak_rss_kb - (self.rss_at_fork_kb or self.peak_rss_kb)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resting", type=positive_int, default=1_000_000, help="resting orders in the engine"
    )
    parser.add_argument(
        "--sample-ms", type=float, default=2.0, help="how often the child's memory is sampled"
    )
    parser.add_argument(
        "--unfrozen",
        action="store_true",
        help="leave the engine in the collector's generations (the matcher freezes it after recovery)",
    )


def run(args: argparse.Namespace) -> int:
    before = own_kb("Rss")
    engine = build_engine(args.resting)
    after = own_kb("Rss")
    if not args.unfrozen:
        gc.freeze()
    shared_kb = own_kb("Anonymous")  # at most this can be copied, by either process
    writer = SnapshotWriter(default_codec(), PARTITION)
    started = time.perf_counter()
    pending = writer.start(engine, args.resting, 0)
    forked = time.perf_counter()
    if pending.pid is None:
        raise UserError("the snapshot was written in place: no child could be forked")
    child = ChildMemory(pending.pid)
    deadline = time.monotonic() + GUARD_S
    while not pending.value.done():
        child.sample()
        if time.monotonic() > deadline:
            raise UserError(f"the snapshot child took more than {GUARD_S:.0f} s")
        time.sleep(args.sample_ms / 1000)
    value = pending.value.result()
    child_s = time.perf_counter() - started
    writer.close()
    if value is None:
        raise UserError("the snapshot child failed (its reason is on stderr)")
    heap = after - before
    print(
        json.dumps(
            {
                "resting": args.resting,
                "parent_heap_mb": _mb(heap),
                "child_peak_extra_mb": _mb(child.peak_private_kb),
                "ratio": round(child.peak_private_kb / heap, 2),
                "child_s": round(child_s, 3),
                "child_allocated_mb": _mb(child.allocated_kb),
                "busy_parent_ratio": round((shared_kb + child.allocated_kb) / heap, 2),
                "parent_rss_mb": _mb(after),
                "fork_ms": round((forked - started) * 1000, 1),
                "record_bytes": len(value),
                "samples": child.samples,
                "frozen": not args.unfrozen,
                "python": platform.python_version(),
                "notes": (
                    "MB = 2^20 bytes. parent_heap_mb: RSS growth from building the book; "
                    "child_peak_extra_mb: the child's peak Private_Dirty (pages it copied or "
                    f"allocated), sampled every {args.sample_ms:g} ms with the parent idle; ratio: "
                    "child / heap; child_s: fork to the record read back; child_allocated_mb: the "
                    "child's peak RSS growth (allocations; copies leave the RSS as it was); "
                    "busy_parent_ratio: (parent's anonymous memory at the fork + child_allocated) / "
                    "heap, the most both could add if the parent rewrote every page meanwhile"
                ),
            }
        )
    )
    return 0


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)
