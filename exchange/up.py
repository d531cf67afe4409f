"""`exchange up`: the whole local cluster in one command; Ctrl-C stops everything it started.

For now the cluster is the Kafka broker (unless ``EXCHANGE_KAFKA_BOOTSTRAP`` names one)
and the topics; the services join it as they are built.
"""

from __future__ import annotations

import argparse
import logging

from runtime.broker import kafka_cluster
from runtime.kafka import admin_client
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.topics import cluster_topic_specs, ensure_topics

log = logging.getLogger("exchange.up")


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange up` takes its configuration from EXCHANGE_* variables only."""


def run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    shutdown = Shutdown().install()
    with kafka_cluster(settings) as bootstrap:
        for change in ensure_topics(admin_client(bootstrap), cluster_topic_specs(settings)):
            log.info("topic", extra={"change": str(change)})
        print(f"exchange cluster up\n  kafka bootstrap: {bootstrap}\nCtrl-C stops it.", flush=True)  # noqa: T201
        shutdown.wait()
        log.info("stopping", extra={"signal": shutdown.signal_name})
    return 0
