"""A matcher in a StatefulSet takes its partition from its pod's ordinal (`--pod-name`)."""

import argparse

import pytest

from matcher.service import configure, partition_of_pod
from runtime.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser


@pytest.mark.parametrize(("pod", "partition"), [("matcher-0", 0), ("matcher-7", 7), ("ex-matcher-12", 12)])
def test_the_ordinal_at_the_end_of_the_pod_name_is_the_partition(pod: str, partition: int) -> None:
    assert partition_of_pod(pod) == partition


@pytest.mark.parametrize("pod", ["matcher", "matcher-", "matcher-a", "matcher-01", "7"])
def test_a_pod_name_without_an_ordinal_is_refused(pod: str) -> None:
    with pytest.raises(UserError, match="ordinal"):
        partition_of_pod(pod)


def test_the_partition_is_given_one_way_only() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--partition", "1", "--pod-name", "matcher-1"])
    with pytest.raises(SystemExit):
        _parser().parse_args([])


def test_pod_name_is_read_as_given() -> None:
    args = _parser().parse_args(["--pod-name", "matcher-3"])

    assert (args.partition, args.pod_name) == (None, "matcher-3")
