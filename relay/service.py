"""`exchange relay`: market data and private executions over WebSocket until SIGTERM or Ctrl-C.

With ``--workers N`` (``EXCHANGE_RELAY_WORKERS``) above 1 this process only supervises N worker
processes, each a whole relay (its own Kafka reader, market and clients) listening on the same port
with SO_REUSEPORT, so the kernel spreads the connections and the fan-out uses N cores. They share
their metrics (prometheus_client's multiprocess files in a directory of the supervisor's): any
worker's /metrics shows the pod's. A worker that ends takes the others down with it, and the
supervisor exits non-zero, so the pod is restarted whole; SIGTERM or Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
from types import FrameType

from relay.app import Relay
from relay.settings import RelaySettings
from runtime.errors import UserError
from runtime.logs import configure_logging
from runtime.metrics import SHARED_METRICS_DIR
from runtime.settings import load_settings

log = logging.getLogger("relay")

# As the matcher's: the youngest generation collected every 20,000 allocations, not 700.
GC_THRESHOLDS = (20_000, 20, 100)


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange relay` takes its configuration from EXCHANGE_RELAY_* variables (and ``--workers``)."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="relay processes sharing the port, each a full relay (default: EXCHANGE_RELAY_WORKERS, 1)",
    )
    parser.add_argument("--pod-worker", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor


async def _serve(relay: Relay) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def listening(port: int) -> None:
        log.info("listening", extra={"url": f"ws://{relay.settings.relay_host}:{port}/ws"})

    await relay.serve(stop, listening)


def run(args: argparse.Namespace) -> int:
    workers = {} if args.workers is None else {"relay_workers": args.workers}  # the flag over the variable
    settings = load_settings(RelaySettings, **workers)
    configure_logging(settings.log_level, settings.log_format)
    if settings.relay_workers > 1 and not args.pod_worker:
        return supervise(settings)
    return serve(settings)


def supervise(settings: RelaySettings) -> int:
    """Run ``relay_workers`` worker processes on the relay's port until SIGTERM (0) or one ends (1)."""
    if settings.relay_port == 0:
        raise UserError("relay workers share one port: set EXCHANGE_RELAY_PORT (not 0)")
    with tempfile.TemporaryDirectory(prefix="exchange-relay-metrics-") as metrics_dir:
        env = {
            **os.environ,
            "EXCHANGE_RELAY_WORKERS": str(settings.relay_workers),
            SHARED_METRICS_DIR: metrics_dir,
        }
        workers: list[subprocess.Popen[bytes]] = []
        stopping = False

        def stop(_signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
            nonlocal stopping
            stopping = True
            for worker in workers:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        command = [sys.executable, "-m", "exchange", "relay", "--pod-worker"]
        workers.extend(subprocess.Popen(command, env=env) for _ in range(settings.relay_workers))
        log.info("relay workers started", extra={"workers": [w.pid for w in workers]})
        failed = False
        while any(worker.returncode is None for worker in workers):
            pid, status = os.wait()
            for worker in workers:
                if worker.pid == pid:
                    worker.returncode = os.waitstatus_to_exitcode(status)
                    failed |= worker.returncode != 0 or not stopping
            if not stopping:
                log.error("a relay worker ended: stopping the others", extra={"pid": pid})
                stop()
    return 1 if failed else 0


def serve(settings: RelaySettings) -> int:
    """One relay in this process until SIGTERM or Ctrl-C; 0 unless its feed failed."""
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
