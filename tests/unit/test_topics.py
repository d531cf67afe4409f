"""The cluster's topics as specified, and what `exchange topics create` plans to do about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import UserError
from runtime.settings import Settings, load_settings
from runtime.topics import TopicNames, TopicSpec, cluster_topic_specs, plan_topics, topic_specs

NAMES = TopicNames.with_prefix("")


def _by_name(specs: list[TopicSpec]) -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in specs}


def test_every_topic_of_the_design_carries_the_prefix() -> None:
    names = TopicNames.with_prefix("dev.")

    assert names.all() == [
        "dev.orders",
        "dev.replies",
        "dev.replies-early",
        "dev.executions",
        "dev.book",
        "dev.book-snapshots",
        "dev.state-snapshots",
        "dev.orders-dlq",
        "dev.symbols",
    ]


def test_a_topic_is_found_by_its_role() -> None:
    names = TopicNames.with_prefix("dev.")

    assert names.by_role()["book_snapshots"] == "dev.book-snapshots"
    assert sorted(names.by_role().values()) == sorted(names.all())


def test_symbol_keyed_topics_have_the_registry_partition_count_and_replies_its_own() -> None:
    specs = _by_name(topic_specs(NAMES, partitions=6, replies_partitions=8))

    assert {name: spec.partitions for name, spec in specs.items()} == {
        "orders": 6,
        "replies": 8,
        "replies-early": 8,
        "executions": 6,
        "book": 6,
        "book-snapshots": 6,
        "state-snapshots": 6,
        "orders-dlq": 6,
        "symbols": 6,
    }


def test_snapshot_and_registry_topics_are_compacted_and_the_others_are_not() -> None:
    specs = _by_name(topic_specs(NAMES, partitions=1, replies_partitions=1))

    compacted = {name for name, spec in specs.items() if spec.config.get("cleanup.policy") == "compact"}

    assert compacted == {"book-snapshots", "state-snapshots", "symbols"}


def test_early_replies_are_kept_for_less_time_than_the_committed_ones() -> None:
    specs = _by_name(topic_specs(NAMES, partitions=1, replies_partitions=1))

    early, committed = specs["replies-early"].config, specs["replies"].config

    assert int(early["retention.ms"]) < int(committed["retention.ms"])


def test_orders_are_kept_for_replay() -> None:
    orders = _by_name(topic_specs(NAMES, partitions=1, replies_partitions=1))["orders"]

    assert orders.config["retention.ms"] == "-1"
    assert orders.config["retention.bytes"] == "-1"


def test_state_snapshots_accept_records_larger_than_the_broker_default() -> None:
    snapshots = _by_name(topic_specs(NAMES, partitions=1, replies_partitions=1))["state-snapshots"]

    assert int(snapshots.config["max.message.bytes"]) > 1024 * 1024


def test_cluster_topics_follow_the_registry_file_and_settings(tmp_path: Path) -> None:
    registry = tmp_path / "symbols.yaml"
    registry.write_text(
        "partition_count: 3\n"
        "symbols:\n"
        "  AAPL:\n"
        "    partition: 2\n"
        '    tick_size: "0.01"\n'
        '    lot_size: "1"\n'
        '    min_qty: "1"\n'
        '    max_qty: "100000"\n'
        '    reference_price: "190.00"\n'
        '    band_percent: "5"\n'
        "    status: trading\n"
    )
    settings: Settings = load_settings(symbols_file=registry, topic_prefix="x.", replies_partitions=5)

    specs = _by_name(cluster_topic_specs(settings))

    assert specs["x.orders"].partitions == 3
    assert specs["x.state-snapshots"].partitions == 3
    assert specs["x.replies"].partitions == 5


def test_missing_topic_is_created() -> None:
    spec = TopicSpec("orders", 4, {"retention.ms": "-1"})

    [change] = plan_topics([spec], partitions={}, configs={})

    assert change.create
    assert str(change) == "orders: created with 4 partitions, retention.ms=-1"


def test_matching_topic_is_left_alone() -> None:
    spec = TopicSpec("orders", 4, {"retention.ms": "-1"})

    [change] = plan_topics([spec], partitions={"orders": 4}, configs={"orders": {"retention.ms": "-1"}})

    assert not change.changes_anything
    assert str(change) == "orders: no change"


def test_topic_with_fewer_partitions_is_grown() -> None:
    [change] = plan_topics([TopicSpec("book", 4)], partitions={"book": 2}, configs={"book": {}})

    assert change.grow_from == 2
    assert str(change) == "book: grown from 2 to 4 partitions"


def test_topic_with_other_config_gets_only_the_differing_keys() -> None:
    spec = TopicSpec("state-snapshots", 1, {"cleanup.policy": "compact", "max.message.bytes": "100"})
    current = {"state-snapshots": {"cleanup.policy": "delete", "max.message.bytes": "100"}}

    [change] = plan_topics([spec], partitions={"state-snapshots": 1}, configs=current)

    assert change.config_updates == {"cleanup.policy": "compact"}
    assert str(change) == "state-snapshots: config set cleanup.policy=compact"


def test_topic_with_more_partitions_stops_the_plan_naming_every_such_topic() -> None:
    specs = [TopicSpec("orders", 2), TopicSpec("book", 2), TopicSpec("replies", 8)]

    with pytest.raises(
        UserError, match=r"orders has 4 partitions, 2 wanted; book has 3 partitions, 2 wanted"
    ):
        plan_topics(specs, partitions={"orders": 4, "book": 3, "replies": 8}, configs={})


def test_one_partition_reads_as_singular() -> None:
    [change] = plan_topics([TopicSpec("replies", 1)], partitions={}, configs={})

    assert str(change) == "replies: created with 1 partition"
