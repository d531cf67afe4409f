"""State snapshots serialized by a forked child, so matching does not stop for them.

Serializing and compressing the whole engine takes seconds at a million resting orders, and
the matcher would match nothing meanwhile. ``fork()`` gives a child an exact copy of the state
at this instant (copy-on-write: it costs page tables, not a copy of the heap); the child writes
the encoded StateSnapshot record to a pipe and exits, and the parent goes on matching. A thread
of the parent reads the pipe, so the child never waits on a full pipe. The record is the same
bytes the parent would have made itself.

The child touches nothing but the engine, zlib, the codec's compiled writer and its end of the
pipe: no Kafka client, no logging, no locks another thread might have held at the fork.

The garbage collector's policy for whole states is here too, not in the pure core: building
(``snapshot``) or restoring (``restore``) one makes a million objects, and the collections
they would start walk all of them and free nothing, so both run with it paused.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple, NoReturn

from matcher.core import MatchingEngine
from matcher.recovery import state_snapshot_record
from schemas import Codec

log = logging.getLogger("matcher.snapshots")

SNAPSHOT_SCHEMA = "StateSnapshot"
# How much less the snapshot child counts for the scheduler than the matcher (19: the least).
SNAPSHOT_CHILD_NICENESS = 19


class PendingSnapshot(NamedTuple):
    """A snapshot being written by a child: its encoded record (None if the child failed) when done."""

    orders_offset: int
    value: Future[bytes | None]
    pid: int | None = None  # the child writing it; None when it was written in place


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a whole state is built (``snapshot``, ``restore``).

    Each collection it would start walks every object made so far and frees nothing: with it
    paused, restoring a million resting orders takes a third of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def encoded_state_snapshot(
    codec: Codec, engine: MatchingEngine, partition: int, orders_offset: int, ts_ns: int
) -> bytes:
    """The StateSnapshot value of ``engine`` as it stands, covering the offsets below ``orders_offset``."""
    # Written and compressed a piece at a time: the whole snapshot (~70 MB raw at a million orders)
    # is never in memory, only its compressed copy. The new rows would start collections that free
    # nothing.
    with collector_paused():
        record = state_snapshot_record(partition, orders_offset, ts_ns, engine.snapshot_pieces())
    return codec.encode(SNAPSHOT_SCHEMA, record, checked=False)[0]


class SnapshotWriter:
    """Forks a child per snapshot; one at a time is enough (snapshots are seconds apart at least)."""

    def __init__(self, codec: Codec, partition: int) -> None:
        self.codec = codec
        self.partition = partition
        self._readers = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"snapshot-{partition}")

    def start(self, engine: MatchingEngine, orders_offset: int, ts_ns: int) -> PendingSnapshot:
        """Begin writing the engine's current state in a child process.

        Where no child can be made (a memory limit refusing the fork), the state is written here
        and now instead: matching pauses for it, as it did before snapshots had children.
        """
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            log.warning(
                "cannot fork to write a state snapshot; writing it in place", extra={"error": str(exc)}
            )
            written: Future[bytes | None] = Future()
            written.set_result(
                encoded_state_snapshot(self.codec, engine, self.partition, orders_offset, ts_ns)
            )
            return PendingSnapshot(orders_offset, written)
        if pid == 0:  # the child
            os.close(read_end)
            self._write_and_exit(write_end, engine, orders_offset, ts_ns)
        os.close(write_end)
        return PendingSnapshot(orders_offset, self._readers.submit(_collect, pid, read_end), pid)

    def close(self) -> None:
        """Wait for a snapshot still being written (seconds at most), then release the reader thread."""
        self._readers.shutdown(wait=True)

    def _write_and_exit(self, pipe: int, engine: MatchingEngine, orders_offset: int, ts_ns: int) -> NoReturn:
        code = 1
        try:
            # Die of a stop signal at once (the parent's handlers would only set its flag), and do
            # not collect: a collection touches every object and would copy the whole heap.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            gc.disable()
            # Background work: where cores are shared (the broker, other matchers), matching and
            # the broker go first; the snapshot takes the time left over.
            os.nice(SNAPSHOT_CHILD_NICENESS)
            value = encoded_state_snapshot(self.codec, engine, self.partition, orders_offset, ts_ns)
            with os.fdopen(pipe, "wb") as out:
                out.write(value)
            code = 0
        except BaseException as exc:  # the parent logs the failure; say why on stderr, lock-free
            os.write(2, f"state snapshot child {os.getpid()} failed: {exc!r}\n".encode())
        finally:
            os._exit(code)  # no atexit handlers, no flushing of the parent's buffers or clients


def _collect(pid: int, pipe: int) -> bytes | None:
    """Everything the child writes, or None if it did not finish well."""
    with os.fdopen(pipe, "rb") as source:
        value = source.read()
    _, status = os.waitpid(pid, 0)
    return value if os.waitstatus_to_exitcode(status) == 0 else None
