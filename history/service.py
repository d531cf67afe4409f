"""`exchange history`: the writer (`executions` into the store) and the REST API, in one process.

The writer runs in a thread beside uvicorn's loop; the API reads what it committed. A writer that
fails for good (a fatal Kafka error) stops the process with a non-zero code for its supervisor;
a database that goes away only makes it not ready until the database returns.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from history.api import History, create_app
from history.metrics import HistoryMetrics
from history.settings import HistorySettings
from history.store import Store
from history.writer import HistoryWriter
from runtime.auth import Authenticator
from runtime.errors import UserError
from runtime.health import Health
from runtime.keys import load_keys
from runtime.live_symbols import LiveRegistry
from runtime.logs import configure_logging
from runtime.settings import load_settings
from runtime.shutdown import Shutdown
from runtime.symbols import load_registry
from runtime.topics import TopicNames

log = logging.getLogger("history")

EXIT_FATAL = 3
WRITER_STOP_WAIT_S = 30.0
# As the matcher's: the youngest generation collected every 20,000 allocations, not 700.
GC_THRESHOLDS = (20_000, 20, 100)


class HistoryService:
    """The store, the writer thread and the API's state, built from the settings."""

    def __init__(self, settings: HistorySettings, metrics_registry: CollectorRegistry | None = None) -> None:
        keys = load_keys(settings.history_keys_file, settings.history_keys, "EXCHANGE_HISTORY_KEYS")
        self.settings = settings
        self.shutdown = Shutdown()
        self.health = Health()
        self.failed = False
        registry = LiveRegistry(load_registry(settings.symbols_file))
        metrics = HistoryMetrics(metrics_registry or CollectorRegistry())
        self.store = Store(settings.database_url())
        auth = Authenticator(
            keys, settings.history_recv_window_s, settings.history_rate_per_s, settings.history_rate_burst
        )
        topics = TopicNames.with_prefix(settings.topic_prefix)
        self.history = History(self.store, registry, auth, topics, metrics, self.health)
        self.writer = HistoryWriter(
            settings,
            store=self.store,
            metrics=metrics,
            health=self.health,
            registry=registry,
            shutdown=self.shutdown,
        )
        self._thread = threading.Thread(target=self._write, name="history-writer", daemon=True)

    def _write(self) -> None:
        try:
            self.writer.run()
        except Exception:
            log.exception("the writer failed; stopping")
            self.failed = True
            self.health.dead("the writer failed")
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn stops; run() exits non-zero

    def app(self) -> FastAPI:
        """The API, whose lifespan starts the writer and stops it."""

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            self._thread.start()
            try:
                yield
            finally:
                self.shutdown.request()
                self._thread.join(WRITER_STOP_WAIT_S)
                self.store.close()

        app = create_app(self.history)
        app.router.lifespan_context = lifespan
        return app


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange history` takes its configuration from EXCHANGE_HISTORY_* variables."""


def run(args: argparse.Namespace) -> int:
    settings = load_settings(HistorySettings)
    configure_logging(settings.log_level, settings.log_format)
    if not settings.history_keys_file and not settings.history_keys:
        raise UserError("no API keys: set EXCHANGE_HISTORY_KEYS_FILE or EXCHANGE_HISTORY_KEYS")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    service = HistoryService(settings)
    # Process-wide policy, so here: a batch of records and a page of rows are each thousands of
    # short-lived objects, and at the default thresholds the collector would run through every long-lived
    # one (the open orders kept in memory, the web framework's) a few times a second, the API's p99.
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    uvicorn.run(
        service.app(),
        host=settings.history_host,
        port=settings.history_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return EXIT_FATAL if service.failed else 0
