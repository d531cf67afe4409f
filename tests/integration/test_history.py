"""The history service on the real broker, on SQLite and on PostgreSQL: the store equals the topic.

A flow from the shared generator is matched by real matchers; `exchange history` (a process) writes
`executions` into a fresh database; the store must then hold exactly the orders and fills a rebuild
computes directly from the topic, whatever happened to the writer on the way (kill -9 included).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from history.settings import store_url
from history.store import Store
from tests.integration.conftest import FlowCluster, RunningMatcher, flow_commands, generate_flow
from tests.integration.history_fixtures import (
    HistoryProcess,
    Postgres,
    Rebuild,
    fresh_postgres_database,
    keys_yaml,
    rebuild_from_topic,
    store_fills,
    store_orders,
    store_positions,
    wait_caught_up,
)

SYMBOLS = ["SYM000", "SYM001", "SYM002"]
PARTITIONS = 2
ACCOUNTS = [f"acct-{n}" for n in range(8)]  # bench.wireflow's accounts
KILLS = 10
# The kill test's flow arrives in a part per writer's life, each part in chunks a pause apart, and the
# last part only after the last kill: every kill finds the store behind, however fast the writer.
FEED_CHUNK = 400
FEED_PAUSE_S = 0.6


def _cluster(
    make_cluster: Callable[..., FlowCluster], start_matcher: Callable[..., RunningMatcher]
) -> FlowCluster:
    cluster = make_cluster(SYMBOLS, partitions=PARTITIONS)
    for partition in range(PARTITIONS):
        start_matcher(cluster, partition)
    return cluster


def _keys(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(keys_yaml(ACCOUNTS))
    return path


def _matched(cluster: FlowCluster, commands: list[Any], pause_s: float = 0.0) -> None:
    """Produce ``commands`` (in chunks ``pause_s`` apart) and wait until the matchers committed every one."""
    _produce(cluster, commands, pause_s)
    _wait_matched(cluster, commands)


def _produce(cluster: FlowCluster, commands: list[Any], pause_s: float = 0.0) -> None:
    step = FEED_CHUNK if pause_s else len(commands)
    for start in range(0, len(commands), step):
        cluster.produce(commands[start : start + step])
        time.sleep(pause_s)


def _wait_matched(cluster: FlowCluster, commands: list[Any]) -> None:
    counts = dict.fromkeys(range(PARTITIONS), 0)
    for command in commands:
        counts[cluster.partition_of(command.symbol)] += 1
    for partition, count in counts.items():
        cluster.wait_committed(partition, count)


def _rebuild(cluster: FlowCluster) -> Rebuild:
    return rebuild_from_topic(cluster.bootstrap, cluster.topics.executions, PARTITIONS)


def _assert_store_equals_rebuild(db_url: str, rebuild: Rebuild) -> None:
    fills = store_fills(db_url)
    assert len(fills) == len(set(fills)), "a fill is stored twice"
    assert set(fills) == rebuild.fills
    orders = store_orders(db_url)
    assert orders.keys() == rebuild.orders.keys()
    wrong = [oid for oid in orders if orders[oid] != rebuild.orders[oid]]
    assert not wrong, f"{len(wrong)} orders differ, e.g. {orders[wrong[0]]} != {rebuild.orders[wrong[0]]}"


def test_after_a_mixed_flow_the_store_equals_a_rebuild_from_the_topic(
    make_cluster: Callable[..., FlowCluster],
    start_matcher: Callable[..., RunningMatcher],
    start_history: Callable[..., HistoryProcess],
    history_db_url: str,
    tmp_path: Path,
) -> None:
    cluster = _cluster(make_cluster, start_matcher)
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 20_000, symbols=len(SYMBOLS), seed=14)
    history = start_history(cluster.env, history_db_url, _keys(tmp_path))

    _matched(cluster, flow_commands(rows))
    rebuild = _rebuild(cluster)
    wait_caught_up(history_db_url, cluster.topics.executions, rebuild.ends)

    assert len(rebuild.fills) > 1000 and len(rebuild.orders) > 10_000  # the flow did trade
    _assert_store_equals_rebuild(history_db_url, rebuild)
    history.wait_ready()


def test_kill_9_of_the_writer_under_load_loses_and_duplicates_nothing(
    make_cluster: Callable[..., FlowCluster],
    start_matcher: Callable[..., RunningMatcher],
    start_history: Callable[..., HistoryProcess],
    history_db_url: str,
    tmp_path: Path,
) -> None:
    cluster = _cluster(make_cluster, start_matcher)
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 20_000, symbols=len(SYMBOLS), seed=15)
    keys = _keys(tmp_path)
    commands = flow_commands(rows)
    # Small batches: many transactions, so a kill lands inside or between them often.
    small = {"EXCHANGE_HISTORY_BATCH_MAX_RECORDS": "50"}
    part = -(-len(commands) // (KILLS + 1))
    parts = [commands[start : start + part] for start in range(0, len(commands), part)]
    rng = random.Random(15)
    at_kills: list[int] = []  # records applied when each kill came
    for feed in parts[:KILLS]:
        history = start_history(cluster.env, history_db_url, keys, **small)
        history.wait_ready()
        feeder = threading.Thread(target=_produce, args=(cluster, feed, FEED_PAUSE_S), daemon=True)
        feeder.start()
        time.sleep(rng.uniform(0.2, 2.5))
        history.kill()
        at_kills.append(sum(store_positions(history_db_url, cluster.topics.executions).values()))
        feeder.join(300)
        assert not feeder.is_alive()
    _produce(cluster, [command for feed in parts[KILLS:] for command in feed])
    _wait_matched(cluster, commands)
    start_history(cluster.env, history_db_url, keys, **small)

    rebuild = _rebuild(cluster)
    wait_caught_up(history_db_url, cluster.topics.executions, rebuild.ends)

    _assert_store_equals_rebuild(history_db_url, rebuild)
    # The kills came while the writer had work: the store moved between them and was behind at each.
    total = sum(rebuild.ends.values())
    assert len(set(at_kills)) > KILLS // 2 and max(at_kills) < total, at_kills
    print(json.dumps({"kills": KILLS, "offsets_at_kills": at_kills, "offsets_total": total,
                      "fills": len(rebuild.fills), "orders": len(rebuild.orders)}))  # fmt: skip


def _walk(
    history: HistoryProcess, path: str, account: str, key: str, limit: int, **params: Any
) -> list[dict[str, Any]]:
    """Every row of every page of ``path`` for ``account``, following next_cursor to the end."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = history.get(path, account, limit=limit, cursor=cursor, **params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        rows += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def test_pages_hold_only_the_accounts_rows_each_once_while_fills_arrive(
    make_cluster: Callable[..., FlowCluster],
    start_matcher: Callable[..., RunningMatcher],
    start_history: Callable[..., HistoryProcess],
    history_db_url: str,
    tmp_path: Path,
) -> None:
    cluster = _cluster(make_cluster, start_matcher)
    rows = generate_flow(tmp_path / "flow.csv", "mixed", 12_000, symbols=len(SYMBOLS), seed=16)
    commands = flow_commands(rows)
    history = start_history(cluster.env, history_db_url, _keys(tmp_path))
    _matched(cluster, commands[:6_000])
    before = _rebuild(cluster)
    wait_caught_up(history_db_url, cluster.topics.executions, before.ends)
    history.wait_ready()
    feeder = threading.Thread(target=_matched, args=(cluster, commands[6_000:]), daemon=True)
    feeder.start()

    fills = _walk(history, "/api/v1/fills", "acct-1", "fills", limit=37)
    orders = _walk(history, "/api/v1/orders/history", "acct-1", "orders", limit=53)
    feeder.join(300)

    fill_keys = [(f["symbol"], f["trade_id"], f["liquidity"]) for f in fills]
    assert len(fill_keys) == len(set(fill_keys)), "a fill came twice"
    mine_before = {
        (s, str(t), liq.lower()) for s, t, liq, _, account, _ in before.fills if account == "acct-1"
    }
    assert mine_before <= set(fill_keys), "a fill stored before the walk began is missing"
    after = _rebuild(cluster)
    mine = {(s, str(t), liq.lower()) for s, t, liq, _, account, _ in after.fills if account == "acct-1"}
    assert set(fill_keys) <= mine, "another account's fill appeared"
    order_ids = [o["order_id"] for o in orders]
    assert len(order_ids) == len(set(order_ids))
    accounts = {after.orders[int(oid)][1] for oid in order_ids}
    assert accounts == {"acct-1"}
    times = [(o["created_at_ns"], int(o["order_id"])) for o in orders]
    assert times == sorted(times, reverse=True), "pages are not newest first"


def test_a_database_that_goes_away_makes_it_unready_and_nothing_is_lost_when_it_returns(
    make_cluster: Callable[..., FlowCluster],
    start_matcher: Callable[..., RunningMatcher],
    start_history: Callable[..., HistoryProcess],
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    cluster = _cluster(make_cluster, start_matcher)
    db_url = fresh_postgres_database(postgres.uri)
    commands = flow_commands(
        generate_flow(tmp_path / "flow.csv", "mixed", 6_000, symbols=len(SYMBOLS), seed=17)
    )
    history = start_history(cluster.env, db_url, _keys(tmp_path), EXCHANGE_HISTORY_RETRY_S="0.2")
    _matched(cluster, commands[:3_000])
    history.wait_ready()

    postgres.stop()
    try:
        _matched(cluster, commands[3_000:])
        deadline = time.monotonic() + 60
        while history.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        unready = not history.ready()
        refused = history.get("/api/v1/fills", "acct-1")
    finally:
        postgres.start()

    assert unready, "/readyz stayed 200 with the database stopped"
    assert (refused.status_code, refused.json()["code"]) == (503, "STORE_UNAVAILABLE")
    rebuild = _rebuild(cluster)
    wait_caught_up(db_url, cluster.topics.executions, rebuild.ends)
    _assert_store_equals_rebuild(db_url, rebuild)
    history.wait_ready()


def test_a_plain_postgresql_url_as_cloudnativepg_writes_it_opens_and_migrates_the_store(
    postgres_uri: str,
) -> None:
    # The operator's app secret holds `uri`: postgresql://user:password@host:port/db, no driver.
    plain = fresh_postgres_database(postgres_uri).replace("postgresql+psycopg://", "postgresql://", 1)
    store = Store(store_url(plain))
    try:
        applied = store.migrate()
        store.add_partitions("executions", [0, 1])
        found = store.positions("executions")
    finally:
        store.close()

    assert applied
    assert [(p.partition, p.next_offset) for p in found] == [(0, 0), (1, 0)]
