"""The relay on a real broker: books from snapshots and deltas, the WebSocket protocol end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import FlowCluster, RunningMatcher, flow_commands, generate_flow
from tests.integration.relay_fixtures import RunningRelay, WsClient, matcher_book

MakeCluster = Callable[..., FlowCluster]
StartMatcher = Callable[..., RunningMatcher]
StartRelay = Callable[..., RunningRelay]
SYMBOL = "SYM000"


def test_a_book_subscription_gets_a_snapshot_then_gap_free_deltas_that_checksum(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 2_000, seed=21)
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster)
    relay = start_relay(cluster, [SYMBOL])
    relay.wait_ready()
    client = WsClient(relay.url)
    first = client.subscribe_book(SYMBOL, depth=25)

    cluster.produce(flow_commands(rows))
    cluster.wait_committed(0, len(rows))
    expected = matcher_book(matcher, SYMBOL, 25)
    relay.wait_seq(SYMBOL, expected[0])
    client.follow_until(SYMBOL, expected[0])

    assert first["type"] == "book_snapshot"
    book = client.books[SYMBOL]
    assert len(book.chain) > 100  # every one checked: no gap, its checksum that of the client's copy
    assert (expected[0], *book.levels()) == relay.book(SYMBOL, 25) == expected
