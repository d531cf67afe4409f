"""The cluster's topics (DESIGN.md), their names under one prefix, and ``exchange topics``.

``exchange topics create`` makes every topic with the partition count of the symbol
registry (``replies`` has its own count: it is keyed by gateway instance, not by symbol)
and the settings each one needs; run again, it changes nothing and says so. A topic that
has fewer partitions than the registry asks for is grown; one with more is an error,
because Kafka cannot take partitions away and symbols would land in the wrong place.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# confluent_kafka.admin re-exports these without __all__, which strict mypy does not accept as public.
from confluent_kafka.admin import (  # type: ignore[attr-defined, unused-ignore]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from runtime.errors import UserError
from runtime.kafka import admin_client, bootstrap_servers, error_of
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings

ADMIN_TIMEOUT_S = 30.0
# A cluster that is up answers metadata at once; waiting longer only delays the error.
METADATA_TIMEOUT_S = 5.0
# The snapshot topics keep the latest record per key: a symbol's book, a partition's state.
COMPACTED = {"cleanup.policy": "compact"}
# orders is the log a matcher replays from its last snapshot; executions are the audit trail.
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
# Replies matter only while a gateway waits for them.
REPLIES_RETENTION = {"retention.ms": str(24 * 3600 * 1000)}
# Early copies of replies only shorten a gateway's wait; the committed copies are the record.
EARLY_REPLIES_RETENTION = {"retention.ms": str(3600 * 1000)}
# A matcher's whole state is one record; the broker's default limit is 1 MiB.
STATE_SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024
# Every other topic says its limit rather than inherit a broker's: a command's output records are
# at most 512 KiB (matcher.wire splits larger ones), commands far smaller (the gateway takes 8 KiB
# bodies), so 1 MiB leaves room for a batch's framing; a dead letter wraps a whole command.
RECORD_MAX_BYTES = 1024 * 1024
DEAD_LETTER_MAX_BYTES = 2 * RECORD_MAX_BYTES
BOUNDED = {"max.message.bytes": str(RECORD_MAX_BYTES)}
# What `describe` shows besides the partition count.
SHOWN_CONFIG = ("cleanup.policy", "retention.ms", "max.message.bytes")


@dataclass(frozen=True)
class TopicNames:
    """The name of each topic of DESIGN.md under one prefix (``orders``, ``book-snapshots``, …)."""

    orders: str
    replies: str
    replies_early: str
    executions: str
    book: str
    book_snapshots: str
    state_snapshots: str
    orders_dlq: str
    symbols: str

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        return cls(**{f.name: prefix + f.name.replace("_", "-") for f in fields(cls)})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]

    def by_role(self) -> dict[str, str]:
        """Each topic's name by its role, the field name (``book_snapshots`` -> its full name)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TopicSpec:
    """A topic as it should be: name, partition count and topic-level config."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def topic_specs(names: TopicNames, *, partitions: int, replies_partitions: int) -> list[TopicSpec]:
    """Every topic of the cluster; ``partitions`` is the symbol registry's partition count."""
    return [
        TopicSpec(names.orders, partitions, {**KEEP_FOREVER, **BOUNDED}),
        TopicSpec(names.replies, replies_partitions, {**REPLIES_RETENTION, **BOUNDED}),
        # Each reply again, written outside the transaction the moment it is computed (matcher.service).
        TopicSpec(names.replies_early, replies_partitions, {**EARLY_REPLIES_RETENTION, **BOUNDED}),
        TopicSpec(names.executions, partitions, {**KEEP_FOREVER, **BOUNDED}),
        TopicSpec(names.book, partitions, BOUNDED),
        TopicSpec(names.book_snapshots, partitions, {**COMPACTED, **BOUNDED}),
        TopicSpec(
            names.state_snapshots,
            partitions,
            {**COMPACTED, "max.message.bytes": str(STATE_SNAPSHOT_MAX_BYTES)},
        ),
        TopicSpec(
            names.orders_dlq, partitions, {**KEEP_FOREVER, "max.message.bytes": str(DEAD_LETTER_MAX_BYTES)}
        ),
        # The registry changes (listings and trading status) that gateways and relays follow.
        TopicSpec(names.symbols, partitions, {**COMPACTED, **BOUNDED}),
    ]


def cluster_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics the settings ask for: prefix and replies count from settings, the rest from the registry."""
    from runtime.symbols import load_registry

    registry = load_registry(settings.symbols_file)
    return topic_specs(
        TopicNames.with_prefix(settings.topic_prefix),
        partitions=registry.partition_count,
        replies_partitions=settings.replies_partitions,
    )


@dataclass(frozen=True)
class TopicChange:
    """What ``ensure_topics`` does (or did) to one topic; ``str()`` is the line it reports."""

    spec: TopicSpec
    create: bool = False
    grow_from: int | None = None
    config_updates: Mapping[str, str] = field(default_factory=dict)

    @property
    def changes_anything(self) -> bool:
        return self.create or self.grow_from is not None or bool(self.config_updates)

    def __str__(self) -> str:
        name, partitions = self.spec.name, self.spec.partitions
        if self.create:
            return f"{name}: created with {_partitions(partitions)}{_config_text(self.spec.config, ', ')}"
        done = []
        if self.grow_from is not None:
            done.append(f"grown from {self.grow_from} to {_partitions(partitions)}")
        if self.config_updates:
            done.append(f"config set{_config_text(self.config_updates, ' ')}")
        return f"{name}: {'; '.join(done) or 'no change'}"


def _partitions(count: int) -> str:
    return f"{count} partition" if count == 1 else f"{count} partitions"


def _config_text(config: Mapping[str, str], lead: str) -> str:
    return lead + " ".join(f"{key}={value}" for key, value in config.items()) if config else ""


def plan_topics(
    specs: Sequence[TopicSpec],
    partitions: Mapping[str, int],
    configs: Mapping[str, Mapping[str, str]],
) -> list[TopicChange]:
    """What to do to reach ``specs`` from the cluster's ``partitions`` and ``configs`` (by topic name).

    Raises a UserError, before anything changes, if a topic has more partitions than asked.
    """
    too_many = [
        f"{spec.name} has {partitions[spec.name]} partitions, {spec.partitions} wanted"
        for spec in specs
        if partitions.get(spec.name, 0) > spec.partitions
    ]
    if too_many:
        raise UserError(
            f"{'; '.join(too_many)}: Kafka cannot remove partitions and keys would move; "
            f"delete these topics or raise the partition count in the symbol registry"
        )
    return [_plan_one(spec, partitions, configs) for spec in specs]


def _plan_one(
    spec: TopicSpec, partitions: Mapping[str, int], configs: Mapping[str, Mapping[str, str]]
) -> TopicChange:
    if spec.name not in partitions:
        return TopicChange(spec, create=True)
    current = configs.get(spec.name, {})
    return TopicChange(
        spec,
        grow_from=partitions[spec.name] if partitions[spec.name] < spec.partitions else None,
        config_updates={key: value for key, value in spec.config.items() if current.get(key) != value},
    )


def ensure_topics(
    admin: AdminClient, specs: Sequence[TopicSpec], timeout: float = ADMIN_TIMEOUT_S
) -> list[TopicChange]:
    """Create, grow or reconfigure topics until they match ``specs``; returns what was done to each."""
    partitions, configs = read_topics(admin, specs, timeout)
    changes = plan_topics(specs, partitions, configs)
    created = [change.spec for change in changes if change.create]
    grown = [change.spec for change in changes if change.grow_from is not None]
    reconfigured = [change for change in changes if change.config_updates and not change.create]
    if created:
        new_topics = [NewTopic(spec.name, spec.partitions, config=dict(spec.config)) for spec in created]
        futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
        # Another process may have created one meanwhile; it is then there, which is the goal.
        _wait_all(futures, "create topic", timeout, tolerate=KafkaError.TOPIC_ALREADY_EXISTS)
    if grown:
        more = [NewPartitions(spec.name, spec.partitions) for spec in grown]
        _wait_all(admin.create_partitions(more, request_timeout=timeout), "add partitions to", timeout)
    if reconfigured:
        updates = [_config_resource(change.spec.name, change.config_updates) for change in reconfigured]
        _wait_all(admin.incremental_alter_configs(updates, request_timeout=timeout), "configure", timeout)
    if created or grown:
        _wait_until_visible(admin, [*created, *grown], timeout)
    return changes


def _wait_until_visible(admin: AdminClient, specs: Sequence[TopicSpec], timeout: float) -> None:
    """Return once metadata shows every spec's partitions, so the next client finds them all."""
    deadline = time.monotonic() + timeout
    while True:
        partitions, _ = read_topics(admin, specs, timeout, with_config=False)
        if all(partitions.get(spec.name) == spec.partitions for spec in specs):
            return
        if time.monotonic() > deadline:
            raise UserError(f"topics were created but not visible within {timeout:.0f} s")
        time.sleep(0.05)


def _config_resource(topic: str, updates: Mapping[str, str]) -> ConfigResource:
    entries = [
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in updates.items()
    ]
    return ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)


def read_topics(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    timeout: float = ADMIN_TIMEOUT_S,
    *,
    with_config: bool = True,
) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """The partition count and (``with_config``) topic config of each of ``specs`` that exists, by name."""
    wanted = {spec.name for spec in specs}
    try:
        metadata = admin.list_topics(timeout=min(timeout, METADATA_TIMEOUT_S))
    except KafkaException as exc:
        raise UserError(
            f"no Kafka cluster answers ({error_of(exc).str()}); start one with `exchange kafka` "
            f"or point EXCHANGE_KAFKA_BOOTSTRAP at one"
        ) from None
    partitions = {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name in wanted and topic.error is None
    }
    if not partitions or not with_config:
        return partitions, {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in partitions]
    described = _wait_all(admin.describe_configs(resources, request_timeout=timeout), "describe", timeout)
    configs = {
        resource.name: {key: entry.value for key, entry in entries.items()}
        for resource, entries in described.items()
    }
    return partitions, configs


def _wait_all(
    futures: Mapping[Any, Future[Any]], what: str, timeout: float, tolerate: int | None = None
) -> dict[Any, Any]:
    """Each future's result by key; the first failure becomes a one-line UserError."""
    results = {}
    for key, future in futures.items():
        try:
            results[key] = future.result(timeout)
        except KafkaException as exc:
            error = error_of(exc)
            if error.code() != tolerate:
                name = getattr(key, "name", key)
                raise UserError(f"could not {what} {name}: {error.str()}") from None
    return results


def describe_lines(specs: Sequence[TopicSpec], admin: AdminClient) -> list[str]:
    """A table of each topic's partitions and main settings, as the cluster has them."""
    partitions, configs = read_topics(admin, specs)
    rows: list[tuple[str, ...]] = [("topic", "partitions", *SHOWN_CONFIG)]
    for spec in specs:
        if spec.name not in partitions:
            rows.append((spec.name, "missing"))
            continue
        config = configs.get(spec.name, {})
        rows.append((spec.name, str(partitions[spec.name]), *(config.get(key, "-") for key in SHOWN_CONFIG)))
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("create", help="create the missing topics, grow or reconfigure the others")
    actions.add_parser("describe", help="show each topic's partitions and settings")


def run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    specs = cluster_topic_specs(settings)
    admin = admin_client(bootstrap_servers(settings))
    lines = (
        [str(change) for change in ensure_topics(admin, specs)]
        if args.action == "create"
        else describe_lines(specs, admin)
    )
    for line in lines:
        print(line)  # noqa: T201
    return 0
