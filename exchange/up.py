"""`exchange up`: the whole local cluster in one command; Ctrl-C stops everything it started.

The cluster is the Kafka broker (unless ``EXCHANGE_KAFKA_BOOTSTRAP`` names one), the topics,
one matcher process per partition of the symbol registry, the REST gateway, the WebSocket
relay and the history service (orders and fills in a SQLite file of the data directory), with
a local demo API key (made once, kept in the data directory) that `exchange up` prints. Each
service runs as its own `exchange` subprocess, as it would in its own pod; a service that dies
is restarted, as Kubernetes would restart it. State lives in the data directory, so a restart
resumes.

``--partitions N`` tries sharding locally: N partitions for the symbol-keyed topics and N matcher
processes, the local registry's symbols dealt over them in registry order (a registry file written in
the data directory, which every service then loads). Topics made with another count are refused at
start: Kafka cannot take partitions away, and adding some would move symbols away from their logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import Field

from exchange.client import DEMO_KEYS_FILE, demo_keys
from runtime.broker import kafka_cluster
from runtime.errors import UserError
from runtime.kafka import admin_client
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.symbols import SymbolRegistry, load_registry
from runtime.topics import TopicNames, TopicSpec, cluster_topic_specs, ensure_topics, read_topics

log = logging.getLogger("exchange.up")

RESTART_PAUSE_S = 2.0
STOP_GRACE_S = 20.0
WATCH_EVERY_S = 0.5


class UpSettings(Settings):
    """Where `exchange up` puts the services' ops endpoints."""

    up_matcher_ops_port: int = Field(
        default=9100, ge=1, le=65000, description="matcher of partition P serves on this + P"
    )
    up_gateway_port: int = Field(default=8080, ge=1, le=65535, description="port of the REST gateway")
    up_relay_port: int = Field(default=8090, ge=1, le=65535, description="port of the WebSocket relay")
    up_history_port: int = Field(default=8070, ge=1, le=65535, description="port of the history API")


# Each partition is a matcher process (about 55 MiB and a transactional producer) on this one
# machine; beyond this the local cluster tries the machine, not the sharding.
MAX_LOCAL_PARTITIONS = 16

DEMO_KEY_ID = "demo"
# The demo market's own keys (`exchange up --demo`): its maker and its takers trade as two accounts.
DEMO_MARKET_KEYS = ("demo-maker", "demo-taker")
PAGE_CONFIG_FILE = "page-config.json"


def ensure_demo_key(data_dir: Path) -> tuple[Path, str]:
    """The local cluster's demo key file and the demo key's secret.

    The file is made once with random secrets (the demo key with every scope, and the demo market's
    maker and taker keys); a file from before the market keys existed gets them added.
    """
    path = data_dir / DEMO_KEYS_FILE
    keys = demo_keys(data_dir)
    if DEMO_KEY_ID not in keys or any(key not in keys for key in DEMO_MARKET_KEYS):
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = {DEMO_KEY_ID: secrets.token_hex(24), **keys}
        keys.update({key: keys.get(key) or secrets.token_hex(24) for key in DEMO_MARKET_KEYS})
        lines = ["# The local cluster's demo keys (made by `exchange up`).", "keys:"]
        for key_id, secret in keys.items():
            scopes = "[read, trade, admin]" if key_id == DEMO_KEY_ID else "[read, trade]"
            lines += [
                f"  - id: {key_id}",
                f'    secret: "{secret}"',
                f"    account: {key_id}",
                f"    scopes: {scopes}",
            ]
        # Only this user may read it: the keys may trade and list symbols on the local cluster.
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        temporary.replace(path)
    return path, keys[DEMO_KEY_ID]


def write_page_config(data_dir: Path, gateway_url: str, secret: str) -> Path:
    """The 호가창's config (gateway URL and demo key), which the relay gives to loopback clients only."""
    path = data_dir / PAGE_CONFIG_FILE
    document = {"gateway": gateway_url, "key": DEMO_KEY_ID, "secret": secret}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(document, file)
    return path


def local_origins(port: int) -> str:
    """The browser origins of a page served on this loopback port (as the CORS setting lists them)."""
    return f"http://127.0.0.1:{port},http://localhost:{port}"


def partition_count_arg(text: str) -> int:
    """``--partitions``: a whole number of partitions the local machine can run a matcher for each."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of partitions, not {text!r}") from None
    if not 1 <= count <= MAX_LOCAL_PARTITIONS:
        raise argparse.ArgumentTypeError(
            f"{count} partitions: the local cluster runs 1 to {MAX_LOCAL_PARTITIONS}, a matcher process each"
        )
    return count


def spread_registry(registry: SymbolRegistry, partitions: int) -> dict[str, Any]:
    """The registry document with its symbols dealt over ``partitions`` in registry order."""
    symbols = {
        symbol.name: {**symbol.to_params(), "partition": index % partitions}
        for index, symbol in enumerate(registry)
    }
    return {"partition_count": partitions, "symbols": symbols}


def local_registry_file(registry_file: Path, data_dir: Path, partitions: int | None) -> Path:
    """The registry the cluster runs: the file itself, or (``--partitions`` with another count)
    its symbols spread over that many partitions, written in the data directory."""
    registry = load_registry(registry_file)
    if partitions is None or partitions == registry.partition_count:
        return registry_file
    path = (data_dir / f"symbols-{partitions}-partitions.yaml").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    header = f"# {registry_file.name} spread over {partitions} partitions by `exchange up --partitions`.\n"
    path.write_text(header + yaml.safe_dump(spread_registry(registry, partitions), sort_keys=False))
    load_registry(path)  # what every service will load: valid, or stop here
    return path


def refuse_another_partition_count(
    existing: Mapping[str, int], specs: Sequence[TopicSpec], names: TopicNames
) -> None:
    """UserError if a symbol-keyed topic exists with another partition count than the registry's."""
    replies = {names.replies, names.replies_early}
    other = {
        spec.name: existing[spec.name]
        for spec in specs
        if spec.name not in replies and spec.name in existing and existing[spec.name] != spec.partitions
    }
    if other:
        wanted = next(spec.partitions for spec in specs if spec.name == names.orders)
        found = ", ".join(f"{name} has {count}" for name, count in other.items())
        raise UserError(
            f"the topics were made with another partition count ({found}; {wanted} wanted): every symbol's "
            f"orders, books and state live on its partition, so they cannot be re-spread. Run with "
            f"--partitions {max(other.values())} as before, or start afresh with another EXCHANGE_DATA_DIR "
            f"(or EXCHANGE_TOPIC_PREFIX on an existing Kafka)"
        )


@dataclass
class Service:
    """One `exchange` subprocess of the cluster, restarted if it dies."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = field(default=0)

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "exchange", *self.args], env=self.env)
        self.started_at = time.monotonic()
        log.info("started", extra={"service": self.name, "pid": self.process.pid})

    def watch(self) -> None:
        """Restart the service if it exited (not sooner than a pause after its last start)."""
        if self.process is None or self.process.poll() is None:
            return
        if time.monotonic() - self.started_at < RESTART_PAUSE_S:
            return
        log.warning("exited; restarting", extra={"service": self.name, "code": self.process.returncode})
        self.restarts += 1
        self.start()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("did not stop in time; killing it", extra={"service": self.name})
            self.process.kill()
            self.process.wait()


def cluster_services(
    settings: UpSettings, bootstrap: str, keys_file: Path, page_config: Path
) -> list[Service]:
    """The services of the local cluster: one matcher per partition, the gateway, the relay, history."""
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": bootstrap,
        "EXCHANGE_SYMBOLS_FILE": str(settings.symbols_file),
    }
    partitions = load_registry(settings.symbols_file).partition_count
    matchers = [
        Service(
            f"matcher-{p}",
            ["matcher", "--partition", str(p)],
            {**env, "EXCHANGE_MATCHER_OPS_PORT": str(settings.up_matcher_ops_port + p)},
        )
        for p in range(partitions)
    ]
    gateway_env = {
        **env,
        "EXCHANGE_GATEWAY_PORT": str(settings.up_gateway_port),
        "EXCHANGE_GATEWAY_KEYS_FILE": str(keys_file),
        # The relay's page calls the gateway from the relay's port.
        "EXCHANGE_GATEWAY_CORS_ORIGINS": local_origins(settings.up_relay_port),
    }
    relay_env = {
        **env,
        "EXCHANGE_RELAY_PORT": str(settings.up_relay_port),
        "EXCHANGE_RELAY_KEYS_FILE": str(keys_file),
        "EXCHANGE_RELAY_PAGE_CONFIG": str(page_config),
    }
    # The history service keeps its SQLite file in the data directory and reads with the same keys.
    history_env = {
        **env,
        "EXCHANGE_HISTORY_PORT": str(settings.up_history_port),
        "EXCHANGE_HISTORY_KEYS_FILE": str(keys_file),
    }
    return [
        *matchers,
        Service("gateway", ["gateway"], gateway_env),
        Service("relay", ["relay"], relay_env),
        Service("history", ["history"], history_env),
    ]


def stop_all(services: list[Service]) -> None:
    """SIGTERM every service, then wait for all of them together."""
    for service in services:
        service.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for service in services:
        service.wait(deadline)


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange up` takes its configuration from EXCHANGE_* variables, the partition count and ``--demo``."""
    parser.add_argument(
        "--partitions",
        type=partition_count_arg,
        default=None,
        metavar="N",
        help=f"N partitions and N matchers, the registry's symbols spread over them "
        f"(1..{MAX_LOCAL_PARTITIONS}; default: the registry file's partition_count)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run `exchange demo` too (a moving market) once the gateway is ready",
    )


def create_topics(settings: Settings, bootstrap: str) -> None:
    """The cluster's topics, after refusing topics of another partition count."""
    admin = admin_client(bootstrap)
    specs = cluster_topic_specs(settings)
    existing, _ = read_topics(admin, specs, with_config=False)
    refuse_another_partition_count(existing, specs, TopicNames.with_prefix(settings.topic_prefix))
    for change in ensure_topics(admin, specs):
        log.info("topic", extra={"change": str(change)})


def summary(
    settings: UpSettings,
    bootstrap: str,
    services: list[Service],
    secret: str,
    keys_file: Path,
    *,
    demo: bool = False,
) -> str:
    """What `exchange up` prints once started: every address, the partitions and the demo key."""
    gateway, relay = f"http://127.0.0.1:{settings.up_gateway_port}", f"127.0.0.1:{settings.up_relay_port}"
    history = f"http://127.0.0.1:{settings.up_history_port}"
    registry = load_registry(settings.symbols_file)
    lines = [f"  kafka bootstrap: {bootstrap}"]
    lines += [
        f"  partition {p}: {' '.join(s.name for s in registry.symbols_of_partition(p)) or '(no symbols)'}"
        for p in range(registry.partition_count)
    ]
    lines += [
        f"  {s.name}: http://127.0.0.1:{s.env['EXCHANGE_MATCHER_OPS_PORT']}/metrics"
        for s in services
        if "EXCHANGE_MATCHER_OPS_PORT" in s.env
    ]
    lines += [
        f"  gateway: {gateway}/api/v1 (OpenAPI: {gateway}/docs, metrics: {gateway}/metrics)",
        f"  relay: ws://{relay}/ws (docs/websocket.md; metrics: http://{relay}/metrics)",
        f"  호가창: http://{relay}/?symbol={next(iter(registry)).name}",
        f"  history: {history}/api/v1/orders/history (OpenAPI: {history}/docs, metrics: {history}/metrics)",
        f"  demo API key: {DEMO_KEY_ID}  secret: {secret}  (in {keys_file})",
    ]
    if demo:
        lines.append("  demo market: starts once the gateway is ready (exchange demo)")
    return "exchange cluster up\n" + "\n".join(lines) + "\nCtrl-C stops it."


def demo_service(gateway_url: str, data_dir: Path) -> Service:
    """`exchange demo` on the local gateway with the data directory's maker and taker keys."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXCHANGE_API_")}
    env |= {"EXCHANGE_GATEWAY_URL": gateway_url, "EXCHANGE_DATA_DIR": str(data_dir)}
    return Service("demo", ["demo"], env)


def gateway_ready(gateway_url: str) -> bool:
    try:
        return httpx.get(f"{gateway_url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run(args: argparse.Namespace) -> int:
    settings = load_settings(UpSettings)
    configure_logging(settings.log_level, settings.log_format)
    registry_file = local_registry_file(settings.symbols_file, settings.data_dir, args.partitions)
    settings = settings.model_copy(update={"symbols_file": registry_file})
    shutdown = Shutdown().install()
    with kafka_cluster(settings) as bootstrap:
        create_topics(settings, bootstrap)
        keys_file, secret = ensure_demo_key(settings.data_dir)
        gateway_url = f"http://127.0.0.1:{settings.up_gateway_port}"
        page_config = write_page_config(settings.data_dir, gateway_url, secret)
        services = cluster_services(settings, bootstrap, keys_file, page_config)
        demo = demo_service(gateway_url, settings.data_dir) if args.demo else None
        for service in services:
            service.start()
        try:
            started = summary(settings, bootstrap, services, secret, keys_file, demo=demo is not None)
            print(started, flush=True)  # noqa: T201
            while not shutdown.wait(WATCH_EVERY_S):
                for service in services:
                    service.watch()
                if demo is not None and demo.process is None and gateway_ready(gateway_url):
                    demo.start()
                    services.insert(0, demo)
            log.info("stopping", extra={"signal": shutdown.signal_name})
        finally:
            # The demo first, while the gateway still takes the cancels of its resting orders.
            if demo is not None:
                stop_all([demo])
            stop_all(services)
    return 0
