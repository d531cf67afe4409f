"""Fixtures shared by every test: one real Kafka broker per run, and uniquely named topics.

The broker starts only when a test asks for it (so unit runs never pay for a JVM), once
per session. ``EXCHANGE_KAFKA_BOOTSTRAP`` set ⇒ that cluster is used and nothing starts.
Tests under ``tests/integration`` and ``tests/e2e`` are marked ``integration``/``e2e``
by folder, so ``-m "not integration"`` selects what runs without a broker.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from runtime import native

# The suite runs on the compiled modules, as the services do (`./dev test` builds them first):
# install their loader before any test module imports one (process-wide policy is the entry point's).
native.install()

from runtime.broker import free_port, kafka_cluster  # noqa: E402
from runtime.kafka import admin_client, read_to_end  # noqa: E402
from runtime.settings import Settings, load_settings  # noqa: E402
from runtime.topics import TopicSpec, ensure_topics  # noqa: E402

TopicFactory = Callable[..., str]
PartitionReader = Callable[..., list[bytes | None]]
# The gateway's, the relay's and the history's fixtures (on the real broker), for the integration tests.
pytest_plugins = [
    "tests.integration.gateway_fixtures",
    "tests.integration.relay_fixtures",
    "tests.integration.history_fixtures",
]

# Guards against a hang only; reading a test topic to its end takes well under a second.
READ_GUARD_S = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in ("integration", "e2e"):
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a real broker: ``EXCHANGE_KAFKA_BOOTSTRAP``, else one started here."""
    # A free port and a fresh data folder: never collides with a broker someone runs by hand.
    settings: Settings = load_settings(kafka_port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"))
    with kafka_cluster(settings) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return admin_client(kafka_bootstrap)


def _unique_name(request: pytest.FixtureRequest) -> str:
    """A topic-safe name made of the test's name and a random suffix."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80]
    return f"test.{slug}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest, kafka_admin: AdminClient) -> Iterator[str]:
    """A prefix no other test uses; topics under it are deleted afterwards."""
    yield from _prefix_deleted_after(_unique_name(request) + ".", kafka_admin)


@pytest.fixture(scope="module")
def module_topic_prefix(request: pytest.FixtureRequest, kafka_admin: AdminClient) -> Iterator[str]:
    """A prefix for the tests of one module that share a cluster; topics under it are deleted afterwards."""
    yield from _prefix_deleted_after(_unique_name(request) + ".", kafka_admin)


def _prefix_deleted_after(prefix: str, admin: AdminClient) -> Iterator[str]:
    yield prefix
    _delete_topics(admin, [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)])


@pytest.fixture
def topic_factory(topic_prefix: str, kafka_admin: AdminClient) -> TopicFactory:
    """``make(partitions=1, config=None) -> name``: a new topic that only this test sees."""
    made: list[str] = []

    def make(partitions: int = 1, config: Mapping[str, str] | None = None) -> str:
        name = f"{topic_prefix}{len(made)}"
        ensure_topics(kafka_admin, [TopicSpec(name, partitions, dict(config or {}))])
        made.append(name)
        return name

    return make


def read_values(
    bootstrap: str, topic: str, partition: int = 0, *, uncommitted: bool = False
) -> list[bytes | None]:
    """Every value of a partition in offset order: committed ones only, or with ``uncommitted`` all of them.

    A committed read ends at the last stable offset, so it never waits for an open transaction.
    """
    isolation = "read_uncommitted" if uncommitted else "read_committed"
    messages = read_to_end(
        bootstrap, topic, partition, client_id="test-reader", isolation=isolation, guard_s=READ_GUARD_S
    )
    return [message.value() for message in messages]


@pytest.fixture
def read_partition(kafka_bootstrap: str) -> PartitionReader:
    """``read(topic, partition=0, uncommitted=False)``: :func:`read_values` on the test broker."""

    def read(topic: str, partition: int = 0, *, uncommitted: bool = False) -> list[bytes | None]:
        return read_values(kafka_bootstrap, topic, partition, uncommitted=uncommitted)

    return read


def _delete_topics(admin: AdminClient, names: list[str]) -> None:
    # Only matters on a shared cluster (EXCHANGE_KAFKA_BOOTSTRAP); a local one is thrown away.
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(30)
