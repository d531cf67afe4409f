"""The log alone defines a partition's state: a genesis snapshot, then commands; the registry file only seeds.

Once, the starting symbols came from the registry file at every start: after the documented
"edit the file, then send AddSymbol", a replay from offset 0 began with the symbol already
listed and refused the original AddSymbol, and a recovery without a state snapshot revived an
order that had been refused for its unknown symbol. Here the file is edited under a running
partition, the partition is replayed and recovered, and the log's answer stands.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from bench.wireflow import WireCommand, flow_registry_yaml, gateway_origin, order_record
from matcher.genesis import genesis_key, read_genesis
from matcher.verify import verify_partition
from runtime.kafka import read_to_end
from runtime.symbols import load_registry
from schemas import default_codec
from tests.integration.conftest import FlowCluster, MatcherProcess, RunningMatcher

MakeCluster = Callable[..., FlowCluster]
StartMatcher = Callable[..., RunningMatcher]

LISTED, LATE = "SYM000", "NEW001"
EXIT_GUARD_S = 60.0


def _limit(seq: int, symbol: str, side: str, price: int) -> WireCommand:
    fields = {"account": f"acct-{side}", "client_order_id": f"o{seq}", "side": side, "qty": 5, "price": price}
    return WireCommand(symbol, "NewOrder", order_record(gateway_origin(seq), symbol, **fields))


def _add_late_symbol(seq: int) -> WireCommand:
    params = {
        "partition": 0,
        "tick_size": "1",
        "lot_size": "1",
        "min_qty": "1",
        "max_qty": "1000000000",
        "reference_price": "10000",
        "band_percent": "0",
        "status": "trading",
    }
    return WireCommand(LATE, "AddSymbol", {"origin": gateway_origin(seq), "symbol": LATE, "params": params})


def _list_in_file(cluster: FlowCluster) -> None:
    """The operator's edit: the late symbol written into the registry file the matcher reads."""
    cluster.settings.symbols_file.write_text(flow_registry_yaml([LISTED, LATE]))


def _reply(cluster: FlowCluster, seq: int) -> dict[str, Any]:
    [reply] = [r for r in cluster.replies() if r["request_id"] == f"req-{seq}"]
    return reply


def _verify_mismatches(cluster: FlowCluster) -> tuple[int, int]:
    group = f"{cluster.settings.topic_prefix}matcher-0"
    registry = load_registry(cluster.settings.symbols_file)  # the file as it is now, edited
    report = verify_partition(cluster.bootstrap, cluster.topics, registry, 0, group=group)
    return report.mismatches, report.commands


def test_a_new_partition_starts_from_a_genesis_of_the_files_symbols(
    make_cluster: MakeCluster, start_matcher: StartMatcher
) -> None:
    cluster = make_cluster([LISTED])
    cluster.produce([_limit(0, LISTED, "SELL", 10_001)])  # before any matcher: after the genesis all the same

    matcher = start_matcher(cluster)
    cluster.wait_committed(0, 1)
    assert matcher.stop() == 0

    genesis = read_genesis(cluster.bootstrap, cluster.topics.state_snapshots, 0, default_codec())
    assert genesis is not None and genesis.orders_offset == 0
    keys = [m.key() for m in read_to_end(cluster.bootstrap, cluster.topics.state_snapshots, 0)]
    assert keys.count(genesis_key(0)) == 1
    assert _reply(cluster, 0)["result"] == "ACCEPTED"


def test_editing_the_file_then_adding_the_symbol_replays_and_recovers_as_the_log_says(
    make_cluster: MakeCluster, start_matcher: StartMatcher
) -> None:
    cluster = make_cluster([LISTED])
    early_sell = _limit(0, LATE, "SELL", 10_000)  # refused: the symbol is not listed yet
    first = MatcherProcess(cluster, EXCHANGE_MATCHER_SNAPSHOT_EVERY_COMMANDS="1000000")
    first.wait_ready()
    cluster.produce([early_sell], partition=0)
    cluster.wait_committed(0, 1)
    _list_in_file(cluster)
    cluster.produce([_add_late_symbol(1)], partition=0)
    cluster.wait_committed(0, 2)
    first.process.send_signal(signal.SIGKILL)  # no snapshot at stop: recovery starts at the genesis
    first.process.wait(EXIT_GUARD_S)

    second = MatcherProcess(cluster)
    second.wait_ready()
    cluster.produce([_limit(2, LATE, "BUY", 10_000)], partition=0)
    cluster.wait_committed(0, 3)
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(EXIT_GUARD_S) == 0

    assert (_reply(cluster, 0)["result"], _reply(cluster, 0)["reason"]) == ("REJECTED", "UNKNOWN_SYMBOL")
    assert _reply(cluster, 1)["result"] == "ACCEPTED"
    buy = _reply(cluster, 2)
    assert (buy["result"], buy["fills"]) == ("ACCEPTED", [])  # the refused sell stayed refused
    assert _verify_mismatches(cluster) == (0, 3)
