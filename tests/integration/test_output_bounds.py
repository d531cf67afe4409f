"""One legitimate command must never stall a partition: its large outputs are split, on a real broker.

A cancel-all of a quarter of a million resting orders once made a 9 MB ExecutionReport that
the broker refused; the matcher aborted, recovered and retried for ever. Here each such command
goes through a matcher on the real broker: the committed offset passes it, every record it
wrote is under the bound, the gateway-side joiner puts its reply back together, and a replay
(``exchange verify``) finds every byte the same.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from bench.recovery import commit_state, write_placeholders
from bench.wireflow import BASE_TS_NS, WireCommand, gateway_origin, order_record
from matcher.core import MatchingEngine, NewOrder, OrderType, Side
from matcher.recovery import state_snapshot_record
from matcher.service import group_id
from matcher.snapshots import collector_paused
from matcher.verify import Report, verify_partition
from matcher.wire import MAX_RECORD_BYTES, core_params
from runtime.kafka import read_to_end
from schemas import default_codec
from schemas.parts import PartJoiner
from tests.integration.conftest import REPLIES_PARTITIONS, FlowCluster, MatcherProcess

MakeCluster = Callable[..., FlowCluster]

SYMBOL = "SYM000"
PASS_GUARD_S = 60.0  # the bound on a stalled partition: the command's offset passes within it
RECOVER_GUARD_S = 120.0  # a matcher reads a million-order state snapshot before it is ready


def _market_buy(seq: int, qty: int) -> WireCommand:
    fields = {"account": "taker", "client_order_id": f"o{seq}", "side": "BUY", "qty": qty, "price": None}
    return WireCommand(SYMBOL, "NewOrder", order_record(gateway_origin(seq), SYMBOL, **fields))


def _records_of(cluster: FlowCluster, offset: int) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Per topic role, the (size, record) of every committed record the command at ``offset`` made."""
    codec = default_codec()
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    where = [("executions", 0), ("book", 0), *(("replies", p) for p in range(REPLIES_PARTITIONS))]
    for role, partition in where:
        for message in read_to_end(cluster.bootstrap, getattr(cluster.topics, role), partition):
            value = message.value() or b""
            _, record = codec.decode(value, message.headers())
            if record["command_offset"] == offset:
                found.setdefault(role, []).append((len(value), record))
    return found


def _book_snapshot(cluster: FlowCluster, request_offset: int) -> list[tuple[int, dict[str, Any]]]:
    """The parts of the book snapshot the command at ``request_offset`` asked for: (size, record)."""
    codec = default_codec()
    found = []
    for message in read_to_end(cluster.bootstrap, cluster.topics.book_snapshots, 0):
        value = message.value() or b""
        found.append((len(value), codec.decode(value, message.headers())[1]))
    seq = _reply_seq(cluster, request_offset)
    return [(size, part) for size, part in found if part["seq"] == seq]


def _reply_seq(cluster: FlowCluster, offset: int) -> int:
    """The book seq in the reply to the RequestBookSnapshot at ``offset``."""
    [(_, reply), *_] = _records_of(cluster, offset)["replies"]
    return int(reply["book"]["seq"])


def _verify(cluster: FlowCluster, *, from_snapshot: bool = False) -> Report:
    return verify_partition(
        cluster.bootstrap,
        cluster.topics,
        cluster.registry,
        0,
        group=group_id(cluster.settings.topic_prefix, 0),
        from_snapshot=from_snapshot,
    )


def _figures(name: str, seconds: float, records: dict[str, list[tuple[int, dict[str, Any]]]]) -> None:
    """The figures the issue asks for, on stderr (pytest -s shows them)."""
    parts = {role: len(found) for role, found in records.items()}
    largest = max(size for found in records.values() for size, _ in found)
    line = {"test": name, "seconds_to_pass": round(seconds, 2), "largest_record": largest, "records": parts}
    print(json.dumps(line), file=sys.stderr)


def _whole_reply(records: dict[str, list[tuple[int, dict[str, Any]]]]) -> dict[str, Any]:
    joiner = PartJoiner("Reply")
    joined = [joiner.add(r["request_id"], r) for _, r in records["replies"]]
    [whole] = [reply for reply in joined if reply is not None]
    return whole


def test_a_cancel_all_of_250k_resting_orders_passes_and_verifies(make_cluster: MakeCluster) -> None:
    resting = 250_000
    cluster = make_cluster([SYMBOL])
    _seed_resting_book(
        cluster, [_resting_sell(seq, "whale", 10_001 + seq % 5_000, 1) for seq in range(resting)]
    )
    cancel_all = WireCommand(
        SYMBOL, "CancelAll", {"origin": gateway_origin(resting), "symbol": SYMBOL, "account": "whale"}
    )

    seconds = _pass_seeded(cluster, resting, cancel_all)

    records = _records_of(cluster, resting)
    _figures("cancel_all_250k", seconds, records)
    assert max(size for found in records.values() for size, _ in found) <= MAX_RECORD_BYTES
    cancelled = [e for _, part in records["executions"] for _, e in part["events"]]
    assert len({e["order_id"] for e in cancelled}) == len(cancelled) == resting
    assert _whole_reply(records)["result"] == "ACCEPTED"
    report = _verify(cluster, from_snapshot=True)
    assert (report.mismatches, report.commands, report.from_offset) == (0, 1, resting), report.examples


def test_a_book_snapshot_and_a_sweep_of_100k_levels_pass_whole_and_verify(make_cluster: MakeCluster) -> None:
    levels = 100_000
    cluster = make_cluster([SYMBOL])
    lots = 1_000  # a level's size in two bytes: the book's L2 snapshot is then over the bound
    _seed_resting_book(
        cluster, [_resting_sell(seq, f"maker-{seq % 8}", 10_001 + seq, lots) for seq in range(levels)]
    )
    snapshot = WireCommand(
        SYMBOL, "RequestBookSnapshot", {"origin": gateway_origin(levels), "symbol": SYMBOL}
    )

    seconds = _pass_seeded(cluster, levels, snapshot, _market_buy(levels + 1, levels * lots))

    book = _book_snapshot(cluster, levels)
    assert max(size for size, _ in book) <= MAX_RECORD_BYTES and len(book) > 1
    joiner = PartJoiner("BookSnapshot")
    whole = next(j for j in (joiner.add(SYMBOL, part) for _, part in book) if j is not None)
    assert [level["price"] for level in whole["asks"]] == [10_001 + seq for seq in range(levels)]
    records = _records_of(cluster, levels + 1)
    _figures("sweep_100k_levels", seconds, records)
    assert max(size for found in records.values() for size, _ in found) <= MAX_RECORD_BYTES
    reply = _whole_reply(records)
    assert len(reply["fills"]) == levels
    assert sum(fill["qty"] for fill in reply["fills"]) == levels * lots
    seqs = [e["seq"] for _, part in records["book"] for _, e in part["events"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # gap-free across the parts
    report = _verify(cluster, from_snapshot=True)
    assert (report.mismatches, report.commands, report.from_offset) == (0, 2, levels), report.examples


def _resting_sell(seq: int, account: str, price: int, lots: int) -> NewOrder:
    return NewOrder(BASE_TS_NS + seq, SYMBOL, account, Side.SELL, OrderType.LIMIT, lots, price)


def _two_sided(resting: int, lots: int) -> Iterator[NewOrder]:
    """``resting`` orders on as many price levels, bids and asks alternately around a mid."""
    mid = 1_000_000
    for seq in range(resting):
        side, price = (Side.BUY, mid - seq // 2) if seq % 2 == 0 else (Side.SELL, mid + 1 + seq // 2)
        yield NewOrder(BASE_TS_NS + seq, SYMBOL, f"maker-{seq % 10_000}", side, OrderType.LIMIT, lots, price)


def _seed_resting_book(cluster: FlowCluster, orders: Iterable[NewOrder]) -> int:
    """Partition 0 as a matcher leaves it after ``orders`` (each resting), the count returned.

    Built in this process and committed as a state snapshot beside placeholder `orders` records:
    matching hundreds of thousands of commands through the broker would take minutes of the suite,
    and what these tests are about is the one large command that follows.
    """
    engine = MatchingEngine(0, map(core_params, cluster.registry.symbols_of_partition(0)))
    resting = 0
    for resting, order in enumerate(orders, start=1):
        engine.apply(order, resting - 1)
    assert engine.resting_count() == resting
    last_ts = BASE_TS_NS + resting
    with collector_paused():
        record = state_snapshot_record(0, resting, last_ts, engine.snapshot_pieces())
    del engine
    snapshot = default_codec().encode("StateSnapshot", record, checked=False)
    write_placeholders(cluster.bootstrap, cluster.topics.orders, resting)
    group = group_id(cluster.settings.topic_prefix, 0)
    commit_state(cluster.bootstrap, cluster.topics, group, snapshot, resting)
    return resting


def _pass_seeded(cluster: FlowCluster, resting: int, *big: WireCommand) -> float:
    """A matcher recovered from the seed matches ``big``: the seconds from their production until
    they are committed. No periodic state snapshot, and killed at the end, so a verify starts from
    the seed."""
    matcher = MatcherProcess(cluster, EXCHANGE_MATCHER_SNAPSHOT_EVERY_COMMANDS="1000000")
    matcher.wait_ready(RECOVER_GUARD_S)
    produced = time.monotonic()
    cluster.produce(list(big))
    cluster.wait_committed(0, resting + len(big), PASS_GUARD_S)
    seconds = time.monotonic() - produced
    matcher.process.kill()
    matcher.process.wait(PASS_GUARD_S)
    return seconds


def test_a_book_snapshot_of_a_1m_order_book_passes_whole_and_verifies(make_cluster: MakeCluster) -> None:
    resting, lots = 1_000_000, 1_000
    cluster = make_cluster([SYMBOL])
    _seed_resting_book(cluster, _two_sided(resting, lots))
    request = {"origin": gateway_origin(resting), "symbol": SYMBOL}

    seconds = _pass_seeded(cluster, resting, WireCommand(SYMBOL, "RequestBookSnapshot", request))

    book = _book_snapshot(cluster, resting)
    records = {**_records_of(cluster, resting), "book_snapshots": book}
    _figures("book_snapshot_1m_orders", seconds, records)
    assert max(size for found in records.values() for size, _ in found) <= MAX_RECORD_BYTES
    joiner = PartJoiner("BookSnapshot")
    whole = next(j for j in (joiner.add(SYMBOL, part) for _, part in book) if j is not None)
    assert len(whole["bids"]) + len(whole["asks"]) == resting
    assert {level["qty"] for level in whole["bids"] + whole["asks"]} == {lots}
    report = _verify(cluster, from_snapshot=True)
    assert (report.mismatches, report.commands, report.from_offset) == (0, 1, resting), report.examples
