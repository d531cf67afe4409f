"""`exchange relay`: market data and private executions over WebSocket until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import signal

from relay.app import Relay
from relay.settings import RelaySettings
from runtime.logs import configure_logging
from runtime.settings import load_settings

log = logging.getLogger("relay")

# As the matcher's: the youngest generation collected every 20,000 allocations, not 700.
GC_THRESHOLDS = (20_000, 20, 100)


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange relay` takes its configuration from EXCHANGE_RELAY_* variables."""


async def _serve(relay: Relay) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def listening(port: int) -> None:
        log.info("listening", extra={"url": f"ws://{relay.settings.relay_host}:{port}/ws"})

    await relay.serve(stop, listening)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(RelaySettings)
    configure_logging(settings.log_level, settings.log_format)
    relay = Relay(settings)
    # Process-wide policy, so here: each batch of the feed makes thousands of short-lived objects, and at
    # the default thresholds the collector would walk every connection's long-lived ones many times a
    # second. What start-up built is frozen out of the collector's way.
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(_serve(relay))
    else:
        asyncio.run(_serve(relay))
    return 0 if relay.health.liveness()[0] else 1
