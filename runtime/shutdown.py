"""Graceful stop on SIGTERM and Ctrl-C: the loop finishes its step, then cleans up."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Shutdown:
    """Set by SIGTERM/SIGINT; long-running loops check :attr:`requested` or :meth:`wait`."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> Shutdown:
        """Handle SIGTERM and SIGINT in this (main) thread; returns self for chaining."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def request(self) -> None:
        """Ask the loop to stop, as a signal would."""
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a stop is requested or the timeout passes; True if a stop was requested."""
        return self._event.wait(timeout)
