"""The relay on a real broker: books from snapshots and deltas, the WebSocket protocol end to end."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from bench.wireflow import FlowRow, WireCommand, account_of, gateway_origin, order_record
from runtime.kafka import IdempotentProducer, read_to_end
from tests.integration.conftest import FlowCluster, RunningMatcher, flow_commands, generate_flow, read_records
from tests.integration.relay_fixtures import ClientBook, RunningRelay, WsClient, matcher_book

MakeCluster = Callable[..., FlowCluster]
StartMatcher = Callable[..., RunningMatcher]
StartRelay = Callable[..., RunningRelay]
SYMBOL = "SYM000"
SETTLE_GUARD_S = 90.0


def _settle(
    cluster: FlowCluster, matcher: RunningMatcher, commands: int, *relays: RunningRelay, depth: int = 25
) -> tuple[int, list[list[str]], list[list[str]]]:
    """Wait until the matcher committed ``commands`` and every relay applied its book; the matcher's book."""
    cluster.wait_committed(0, commands)
    expected = matcher_book(matcher, SYMBOL, depth)
    for relay in relays:
        relay.wait_seq(SYMBOL, expected[0])
    return expected


def _live(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, **relay_settings: Any
) -> tuple[FlowCluster, RunningMatcher, RunningRelay]:
    """A cluster of one symbol, its matcher, and a ready relay with ``relay_settings``."""
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster)
    relay = start_relay(cluster, [SYMBOL], **relay_settings)
    relay.wait_ready()
    return cluster, matcher, relay


def _flow(tmp_path: Path, orders: int, seed: int) -> list[FlowRow]:
    return generate_flow(tmp_path / f"flow-{seed}.csv", "mixed", orders, seed=seed)


def test_a_book_subscription_gets_a_snapshot_then_gap_free_deltas_that_checksum(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 2_000, 21)
    cluster, matcher, relay = _live(make_cluster, start_matcher, start_relay)
    client = WsClient(relay.url)
    first = client.subscribe_book(SYMBOL, depth=25)

    cluster.produce(flow_commands(rows))
    expected = _settle(cluster, matcher, len(rows), relay)
    client.follow_until(SYMBOL, expected[0])

    assert first["type"] == "book_snapshot"
    book = client.books[SYMBOL]
    assert len(book.chain) > 100  # every one checked: no gap, its checksum that of the client's copy
    assert (expected[0], *book.levels()) == relay.book(SYMBOL, 25) == expected


def test_two_relays_one_booted_mid_flow_send_identical_sequences_and_checksums(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 3_000, 22)
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster, matcher_book_snapshot_every_s=0.2)
    first = start_relay(cluster, [SYMBOL])
    first.wait_ready()
    a = WsClient(first.url)
    a.subscribe_book(SYMBOL, depth=100)
    cluster.produce(flow_commands(rows[:1_500]))
    _settle(cluster, matcher, 1_500, first)
    # Booted from the latest snapshot, reading `book` only from when it was written.
    second = start_relay(cluster, [SYMBOL], relay_boot_margin_s=0, relay_tape_hours=0)
    second.wait_ready()
    b = WsClient(second.url)
    b_first = b.subscribe_book(SYMBOL, depth=100)

    cluster.produce(flow_commands(rows[1_500:]))
    expected = _settle(cluster, matcher, len(rows), first, second, depth=100)
    a.follow_until(SYMBOL, expected[0])
    b.follow_until(SYMBOL, expected[0])

    assert second.metric("exchange_relay_records_total", topic="book_snapshots") >= 1
    start = b_first["seq"]
    assert 0 < start < expected[0]
    deltas_a = [_delta_of(m) for m in a.seen if m["type"] == "book" and m["prev_seq"] >= start]
    deltas_b = [_delta_of(m) for m in b.seen if m["type"] == "book"]
    assert deltas_a == deltas_b
    assert len(deltas_b) > 100
    assert first.book(SYMBOL, 100) == second.book(SYMBOL, 100) == expected


def _delta_of(message: dict[str, Any]) -> tuple[Any, ...]:
    return message["prev_seq"], message["seq"], message["checksum"], message["bids"], message["asks"]


def test_a_relay_that_started_reading_too_late_steps_back(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 2_000, 23)
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster, matcher_book_snapshot_every_s=3600)  # snapshots on request only
    snapshot_request = WireCommand(
        SYMBOL, "RequestBookSnapshot", {"origin": gateway_origin(10**6), "symbol": SYMBOL}
    )
    cluster.produce([*flow_commands(rows[:500]), snapshot_request, *flow_commands(rows[500:1_000])])
    _settle(cluster, matcher, 1_001)
    # The snapshot written again now: the relay reads `book` from now, after the deltas that follow it.
    _rewrite_snapshots(cluster)
    relay = start_relay(cluster, [SYMBOL], relay_boot_margin_s=0, relay_tape_hours=0)
    relay.wait_ready()

    cluster.produce(flow_commands(rows[1_000:]))
    expected = _settle(cluster, matcher, len(rows) + 1, relay)

    assert relay.metric("exchange_relay_step_backs_total") >= 1
    assert relay.book(SYMBOL, 25) == expected


def _rewrite_snapshots(cluster: FlowCluster) -> None:
    producer = IdempotentProducer(cluster.bootstrap, client_id="test-snapshot")
    for message in read_to_end(cluster.bootstrap, cluster.topics.book_snapshots, 0):
        producer.produce(
            cluster.topics.book_snapshots,
            message.value(),
            key=message.key(),
            partition=0,
            headers=message.headers(),
        )
    producer.close()


def test_the_private_channel_shows_each_account_only_its_own_executions(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 1_500, 24)
    cluster, matcher, relay = _live(make_cluster, start_matcher, start_relay)
    clients = {}
    for account in ("acct-1", "acct-2"):
        client = clients[account] = WsClient(relay.url)
        assert client.auth(f"k-{account}", f"{account}-secret-of-sixteen")["account"] == account
        client.send(op="subscribe", channel="executions", id=1)
        assert client.recv()["type"] == "subscribed"
    anonymous = WsClient(relay.url)
    anonymous.send(op="subscribe", channel="executions", id=2)

    cluster.produce(flow_commands(rows))
    _settle(cluster, matcher, len(rows), relay)

    assert anonymous.recv()["code"] == "NOT_AUTHENTICATED"
    expected = _event_ids_by_account(cluster)
    for account, client in clients.items():
        wanted = expected[account]
        got = [client.recv_type("execution") for _ in range(sum(wanted.values()))]
        assert Counter(m["event_id"] for m in got) == wanted
        # Every order named is the account's own: the flow's client order ids say whose it is.
        assert {account_of(int(m["client_order_id"][1:])) for m in got if m["client_order_id"]} == {account}
        assert all("account" not in m and "maker_account" not in m for m in got)


def _event_ids_by_account(cluster: FlowCluster) -> dict[str, Counter[int]]:
    """Each account's execution event ids, straight from the `executions` topic (a fill counts for both)."""
    found: dict[str, Counter[int]] = {}
    for _, report in read_records(cluster.bootstrap, cluster.topics.executions):
        for _, event in report["events"]:
            accounts = [event.get("taker_account"), event.get("maker_account"), event.get("account")]
            for account in filter(None, accounts):
                found.setdefault(account, Counter())[event["event_id"]] += 1
    return found


def test_auth_is_refused_for_a_bad_signature_a_stale_time_a_replay_and_a_key_without_read(
    make_cluster: MakeCluster, start_relay: StartRelay
) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL])
    relay.wait_ready()
    client = WsClient(relay.url)
    now_ms = int(time.time() * 1000)

    wrong_secret = client.auth("k-acct-1", "not-the-secret-of-acct-1")
    stale = client.auth("k-acct-1", "acct-1-secret-of-sixteen", now_ms - 60_000)
    fine = client.auth("k-acct-1", "acct-1-secret-of-sixteen", now_ms)
    replayed = client.auth("k-acct-1", "acct-1-secret-of-sixteen", now_ms)
    no_read = client.auth("k-trader", "trader-secret-of-sixteen")
    unknown = client.auth("nobody", "nobody-secret-of-sixteen")

    assert fine["type"] == "authenticated"
    refused = [wrong_secret, stale, replayed, no_read, unknown]
    assert [(m["type"], m["code"]) for m in refused] == [("error", "AUTH_FAILED")] * 5


# Each bad request with the error code it gets; the connection stays open and usable.
BAD_REQUESTS = [
    ("not json", "BAD_JSON"),
    ("[1, 2]", "BAD_REQUEST"),
    ('{"op": "dance"}', "UNKNOWN_OP"),
    ('{"op": "subscribe", "channel": "gossip", "symbol": "SYM000"}', "UNKNOWN_CHANNEL"),
    ('{"op": "subscribe", "channel": "book", "symbol": "NOPE-USD"}', "UNKNOWN_SYMBOL"),
    ('{"op": "subscribe", "channel": "book", "symbol": "SYM000", "depth": 7}', "BAD_DEPTH"),
    ('{"op": "subscribe", "channel": "book", "symbol": "SYM000", "depth": 25.0}', "BAD_DEPTH"),
    ('{"op": "subscribe", "channel": "trades", "symbol": "SYM000", "resume_seq": 3}', "BAD_REQUEST"),
    ('{"op": "subscribe", "channel": "book", "symbol": "SYM000", "resume_seq": -1}', "BAD_REQUEST"),
    ('{"op": "subscribe", "channel": "trades"}', "BAD_REQUEST"),
    ('{"op": "unsubscribe", "channel": "ticker", "symbol": "SYM000"}', "NOT_SUBSCRIBED"),
    ('{"op": "ping", "id": "seven"}', "BAD_REQUEST"),
    ('{"op": "auth", "key": 5}', "BAD_REQUEST"),
    ('{"op": "subscribe", "channel": "executions"}', "NOT_AUTHENTICATED"),
    ("[" * 100_000, "BAD_JSON"),
]


def test_every_bad_request_gets_its_error_code_and_the_connection_goes_on(
    make_cluster: MakeCluster, start_relay: StartRelay
) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL], relay_max_frame_bytes=200_000, relay_max_subscriptions=1)
    relay.wait_ready()
    client = WsClient(relay.url, max_size=None)

    codes = []
    for frame, _ in BAD_REQUESTS:
        client.connection.send(frame)
        codes.append(client.recv()["code"])
    client.connection.send(b"\x00binary")
    codes.append(client.recv()["code"])
    client.send(op="subscribe", channel="ticker", symbol=SYMBOL, id=1)
    subscribed = client.recv()
    ticker = client.recv()
    client.send(op="subscribe", channel="ticker", symbol=SYMBOL, id=2)
    codes.append(client.recv()["code"])
    client.send(op="subscribe", channel="trades", symbol=SYMBOL, id=3)
    codes.append(client.recv()["code"])
    client.send(op="ping", id=9)

    assert codes == [code for _, code in BAD_REQUESTS] + [
        "BINARY_FRAME",
        "ALREADY_SUBSCRIBED",
        "TOO_MANY_SUBSCRIPTIONS",
    ]
    assert subscribed == {"type": "subscribed", "id": 1, "channel": "ticker", "symbol": SYMBOL}
    assert (ticker["type"], ticker["bid"], ticker["volume_24h"]) == ("ticker", None, "0.000")
    assert client.recv_type("pong")["id"] == 9
    assert relay.metric("exchange_relay_protocol_errors_total", code="BAD_JSON") == 2


def _close_code(client: WsClient) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(1_000):
            client.recv(guard_s=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_an_oversized_frame_closes_with_1009(make_cluster: MakeCluster, start_relay: StartRelay) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL], relay_max_frame_bytes=1024)
    relay.wait_ready()
    client = WsClient(relay.url)

    client.connection.send("x" * 2048)

    assert _close_code(client) == 1009


def test_a_flood_of_requests_closes_with_1008(make_cluster: MakeCluster, start_relay: StartRelay) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL], relay_rate_per_s=5, relay_rate_burst=10)
    relay.wait_ready()
    client = WsClient(relay.url)

    for index in range(50):
        try:
            client.send(op="ping", id=index)
        except ConnectionClosed:
            break  # closed mid-flood, as it should be: the close code is read below

    assert _close_code(client) == 1008
    assert relay.metric("exchange_relay_dropped_clients_total", reason="FLOOD") == 1


def test_a_stream_of_refused_requests_closes_with_1008(
    make_cluster: MakeCluster, start_relay: StartRelay
) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL], relay_max_errors=5)
    relay.wait_ready()
    client = WsClient(relay.url)

    for _ in range(5):
        client.connection.send("nonsense")

    assert _close_code(client) == 1008
    assert relay.metric("exchange_relay_dropped_clients_total", reason="TOO_MANY_ERRORS") == 1


def test_random_disconnects_and_resumes_keep_the_clients_book_equal_to_the_relays(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 4_000, 25)
    cluster, matcher, relay = _live(make_cluster, start_matcher, start_relay, relay_change_log=300)
    commands = flow_commands(rows)
    chance = random.Random(int.from_bytes(os.urandom(4)))
    first_messages: list[str] = []
    book = ClientBook(25)  # the client's copy, kept across its connections
    for start in range(0, len(commands), 100):
        cluster.produce(commands[start : start + 100])
        client = WsClient(relay.url)
        first_messages.append(client.subscribe_book(SYMBOL, depth=25, book=book)["type"])
        with contextlib.suppress(TimeoutError):  # everything so far was read
            for _ in range(chance.randrange(1, 60)):
                client.recv(guard_s=1)  # checked against the client's copy: no gap, the same checksum
        client.close()
        time.sleep(chance.random() * 0.2)
    expected = _settle(cluster, matcher, len(rows), relay)

    seq = book.seq
    last = WsClient(relay.url).subscribe_book(SYMBOL, depth=25, book=book)

    assert len(first_messages) == 40
    assert (last["type"], last["prev_seq"], last["seq"]) == ("book", seq, expected[0])
    assert (expected[0], *book.levels()) == expected == relay.book(SYMBOL, 25)


def test_a_resume_gets_the_missed_deltas_or_a_snapshot_once_they_are_gone(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 1_500, 26)
    cluster, matcher, relay = _live(make_cluster, start_matcher, start_relay, relay_change_log=100)
    cluster.produce(flow_commands(rows[:1_000]))
    _settle(cluster, matcher, 1_000, relay)
    long_ago = _copy_now(relay)
    cluster.produce(flow_commands(rows[1_000:1_400]))  # far more level changes than the log keeps
    _settle(cluster, matcher, 1_400, relay)
    recently = _copy_now(relay)
    cluster.produce(flow_commands(rows[1_400:1_410]))
    expected = _settle(cluster, matcher, 1_410, relay)

    missed = WsClient(relay.url).subscribe_book(SYMBOL, depth=25, book=recently)
    gone = WsClient(relay.url).subscribe_book(SYMBOL, depth=25, book=long_ago)

    assert (missed["type"], missed["seq"]) == ("book", expected[0])
    assert (gone["type"], gone["seq"]) == ("book_snapshot", expected[0])
    assert (expected[0], *recently.levels()) == (expected[0], *long_ago.levels()) == expected


def _copy_now(relay: RunningRelay) -> ClientBook:
    """A client's copy of the book as it stands, taken by a connection that then goes away."""
    client = WsClient(relay.url)
    client.subscribe_book(SYMBOL, depth=25)
    client.close()
    return client.books[SYMBOL]


def _produce_in_chunks(cluster: FlowCluster, commands: list[WireCommand], size: int, pause_s: float) -> None:
    for start in range(0, len(commands), size):
        cluster.produce(commands[start : start + size])
        time.sleep(pause_s)


def test_a_client_that_never_reads_is_resynced_then_closed_while_others_keep_receiving(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 4_000, 27)
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster)
    # A queue holds a few transactions' worth of updates (the matcher commits up to 200 commands at once).
    relay = start_relay(
        cluster, [SYMBOL], relay_client_queue=1_000, relay_max_resyncs=1, relay_socket_send_bytes=16_384
    )
    relay.wait_ready()
    stuck = _never_reading_client(relay.relay.port, ["book", "trades", "ticker", "candles"])
    reader = WsClient(relay.url)  # reads its socket all the time, whatever the test does
    reader.subscribe_book(SYMBOL, depth=25)

    cluster.produce(flow_commands(rows))
    cluster.wait_committed(0, len(rows))
    deadline = time.monotonic() + 5.0
    while _slow_client_handled(relay) == (0, 0):
        assert time.monotonic() < deadline, (
            "the client that never reads was neither resynced nor closed in 5 s"
        )
        time.sleep(0.05)
    expected = _settle(cluster, matcher, len(rows), relay)
    reader.follow_until(SYMBOL, expected[0])

    resynced, closed = _slow_client_handled(relay)
    deadline = time.monotonic() + 10.0  # a closed client's stuck send is cut off after the send timeout
    while relay.metric("exchange_relay_clients") != 2 - closed and time.monotonic() < deadline:
        time.sleep(0.05)

    assert resynced + closed >= 1
    assert relay.metric("exchange_relay_clients") == 2 - closed
    assert (expected[0], *reader.books[SYMBOL].levels()) == expected
    stuck.close()


def _slow_client_handled(relay: RunningRelay) -> tuple[float, float]:
    """(resyncs, clients closed as slow consumers) so far."""
    closed = relay.metric("exchange_relay_dropped_clients_total", reason="SLOW_CONSUMER")
    return relay.metric("exchange_relay_resyncs_total"), closed


def _never_reading_client(port: int, channels: list[str]) -> socket.socket:
    """A raw WebSocket client with a tiny receive buffer that subscribes, then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    for channel in channels:
        request = {"op": "subscribe", "channel": channel, "symbol": SYMBOL}
        if channel == "book":
            request["depth"] = 1000
        sock.sendall(_masked_text_frame(json.dumps(request).encode()))
    return sock


def _masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def test_a_relay_restarted_while_orders_flow_comes_back_to_the_same_book(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay, tmp_path: Path
) -> None:
    rows = _flow(tmp_path, 4_000, 28)
    cluster = make_cluster([SYMBOL])
    matcher = start_matcher(cluster, matcher_book_snapshot_every_s=0.5)
    steady = start_relay(cluster, [SYMBOL])
    restarted = start_relay(cluster, [SYMBOL])
    restarted.wait_ready()
    producer = threading.Thread(target=_produce_in_chunks, args=(cluster, flow_commands(rows), 200, 0.1))
    producer.start()
    time.sleep(0.5)
    restarted.stop()
    time.sleep(0.5)
    again = start_relay(cluster, [SYMBOL])
    again.wait_ready()
    client = WsClient(again.url)
    client.subscribe_book(SYMBOL, depth=100)
    producer.join()

    expected = _settle(cluster, matcher, len(rows), steady, again, depth=100)
    client.follow_until(SYMBOL, expected[0])

    assert again.book(SYMBOL, 100) == steady.book(SYMBOL, 100) == expected
    assert (expected[0], *client.books[SYMBOL].levels()) == expected


def test_a_symbol_listed_at_runtime_is_served_without_a_restart(
    make_cluster: MakeCluster, start_matcher: StartMatcher, start_relay: StartRelay
) -> None:
    cluster, matcher, relay = _live(make_cluster, start_matcher, start_relay)
    client = WsClient(relay.url)
    listing = {
        "partition": 0, "tick_size": "0.01", "lot_size": "0.001", "min_qty": "0.001", "max_qty": "1000",
        "reference_price": "100.00", "band_percent": "0", "status": "trading",
    }  # fmt: skip
    add = WireCommand(
        "NEW-1", "AddSymbol", {"origin": gateway_origin(1), "symbol": "NEW-1", "params": listing}
    )
    orders = [
        WireCommand("NEW-1", "NewOrder", order_record(gateway_origin(2 + i), "NEW-1", account="acct-1",
                    client_order_id=f"n{i}", side="BUY" if i % 2 else "SELL", qty=5 + i,
                    price=10_000 + (-1 if i % 2 else 1) * (1 + i)))
        for i in range(20)
    ]  # fmt: skip

    cluster.produce([add], partition=0)
    client.books["NEW-1"] = ClientBook(25)
    client.send(op="subscribe", channel="book", symbol="NEW-1", depth=25)
    deadline = time.monotonic() + 30
    while (answer := client.recv())["type"] == "error":
        assert answer["code"] == "UNKNOWN_SYMBOL" and time.monotonic() < deadline
        time.sleep(0.1)
        client.send(op="subscribe", channel="book", symbol="NEW-1", depth=25)
    client.recv()  # the book's snapshot
    cluster.produce(orders, partition=0)
    cluster.wait_committed(0, 1 + len(orders))
    book = matcher.matcher.processor.engine.book_depth("NEW-1")
    assert book is not None
    client.follow_until("NEW-1", book.seq)

    bids, asks = client.books["NEW-1"].levels()
    assert answer["type"] == "subscribed"
    assert bids == [[f"{p / 100:.2f}", f"{q / 1000:.3f}"] for p, q, _ in book.bids]
    assert asks == [[f"{p / 100:.2f}", f"{q / 1000:.3f}"] for p, q, _ in book.asks]


def test_ops_endpoints_answer_and_a_quiet_connection_gets_heartbeats(
    make_cluster: MakeCluster, start_relay: StartRelay
) -> None:
    cluster = make_cluster([SYMBOL])
    relay = start_relay(cluster, [SYMBOL])
    relay.wait_ready()
    client = WsClient(relay.url)

    heartbeat = json.loads(client.connection.recv(timeout=10))
    metrics = httpx.get(f"{relay.http}/metrics", timeout=5)

    assert heartbeat["type"] == "heartbeat"
    assert httpx.get(f"{relay.http}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{relay.http}/readyz", timeout=5).status_code == 200
    assert httpx.get(f"{relay.http}/nowhere", timeout=5).status_code == 404
    assert metrics.status_code == 200
    assert "exchange_relay_clients 1.0" in metrics.text
