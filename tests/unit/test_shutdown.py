"""SIGTERM asks the loop to stop instead of killing it mid-step."""

import os
import signal

from runtime.shutdown import Shutdown


def test_sigterm_requests_a_stop() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    shutdown = Shutdown().install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)

        assert shutdown.wait(timeout=5)
        assert shutdown.signal_name == "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_wait_times_out_without_a_request() -> None:
    assert Shutdown().wait(timeout=0.01) is False


def test_request_stops_like_a_signal() -> None:
    shutdown = Shutdown()

    shutdown.request()

    assert shutdown.requested
