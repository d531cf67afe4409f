"""Progress of a long run (a benchmark, a verify, a replay), logged to stderr now and then.

Commands whose result is one JSON line on stdout say how far they are on stderr only, so the
line stays the only thing on stdout and a person watching still sees the run move.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("progress")

EVERY_S = 5.0


class Progress:
    """Counts work done; logs the count (and the rate) at most every ``every_s`` seconds."""

    def __init__(self, task: str, total: int | None = None, *, every_s: float = EVERY_S) -> None:
        self.task = task
        self.total = total
        self.every_s = every_s
        self.done = 0
        self._started = self._logged = time.monotonic()

    def advance(self, count: int = 1) -> None:
        """``count`` more units are done."""
        self.done += count
        now = time.monotonic()
        if now - self._logged >= self.every_s:
            self._logged = now
            self._log(now)

    def reached(self, done: int) -> None:
        """``done`` units are done in all (for work measured by a position, such as an offset)."""
        self.advance(done - self.done)

    def _log(self, now: float) -> None:
        elapsed = now - self._started
        fields: dict[str, object] = {"task": self.task, "done": self.done, "seconds": round(elapsed, 1)}
        if self.total is not None:
            fields["total"] = self.total
        if elapsed > 0:
            fields["per_s"] = round(self.done / elapsed)
        log.info("progress", extra=fields)
