"""`exchange up --partitions N`: the registry spread over N partitions, bad counts refused, and
topics made with another count refused with a message that says what to do."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from exchange.up import (
    MAX_LOCAL_PARTITIONS,
    local_registry_file,
    partition_count_arg,
    refuse_another_partition_count,
)
from runtime.errors import UserError
from runtime.settings import DEFAULT_SYMBOLS_FILE
from runtime.symbols import load_registry
from runtime.topics import TopicNames, topic_specs


@pytest.mark.parametrize("partitions", [1, 2, 3, 8, MAX_LOCAL_PARTITIONS])
def test_the_symbols_are_dealt_over_every_partition_with_their_parameters(
    tmp_path: Path, partitions: int
) -> None:
    local = load_registry(DEFAULT_SYMBOLS_FILE)

    spread = load_registry(local_registry_file(DEFAULT_SYMBOLS_FILE, tmp_path, partitions))

    assert spread.partition_count == partitions
    used = {symbol.partition for symbol in spread}
    assert used == set(range(min(partitions, len(local))))
    for symbol in local:
        assert {**spread[symbol.name].to_params(), "partition": 0} == {**symbol.to_params(), "partition": 0}


def test_the_registry_file_itself_runs_when_the_count_is_its_own(tmp_path: Path) -> None:
    own = load_registry(DEFAULT_SYMBOLS_FILE).partition_count

    assert local_registry_file(DEFAULT_SYMBOLS_FILE, tmp_path, None) == DEFAULT_SYMBOLS_FILE
    assert local_registry_file(DEFAULT_SYMBOLS_FILE, tmp_path, own) == DEFAULT_SYMBOLS_FILE
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "said"),
    [("0", "1 to 16"), ("-2", "1 to 16"), ("17", "1 to 16"), ("100000", "1 to 16"), ("two", "not 'two'"),
     ("", "not ''")],
)  # fmt: skip
def test_a_partition_count_the_machine_cannot_run_is_refused(text: str, said: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=said):
        partition_count_arg(text)


def test_topics_made_with_another_partition_count_are_refused_naming_it() -> None:
    names = TopicNames.with_prefix("t-")
    specs = topic_specs(names, partitions=2, replies_partitions=8)
    made_with_four = {spec.name: 4 for spec in specs} | {names.replies: 8, names.replies_early: 8}

    with pytest.raises(UserError) as refused:
        refuse_another_partition_count(made_with_four, specs, names)

    assert "t-orders has 4" in str(refused.value) and "2 wanted" in str(refused.value)
    assert "--partitions 4" in str(refused.value)


def test_topics_of_the_same_count_or_none_yet_pass() -> None:
    names = TopicNames.with_prefix("t-")
    specs = topic_specs(names, partitions=2, replies_partitions=8)

    refuse_another_partition_count({}, specs, names)
    refuse_another_partition_count({spec.name: spec.partitions for spec in specs}, specs, names)
    # The replies topics follow their own setting, not the registry.
    refuse_another_partition_count({names.replies: 4, names.orders: 2}, specs, names)
