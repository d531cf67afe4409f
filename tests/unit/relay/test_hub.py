"""The fan-out: replies and first messages, one encoding for all, slow clients resynced then closed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from relay.access import Access
from relay.hub import Client, Hub, Run
from relay.market import Market
from relay.metrics import RelayMetrics
from relay.protocol import CloseCode
from runtime.live_symbols import LiveRegistry
from runtime.symbols import SymbolRegistry
from tests.unit.relay.test_market import level, trade, update


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(registry: SymbolRegistry, clock: Clock) -> Hub:
    return Hub(
        Market(),
        LiveRegistry(registry),
        Access({}, 5.0),
        RelayMetrics(CollectorRegistry()),
        max_subscriptions=3,
        max_resyncs=1,
        resync_window_s=30.0,
        clock=clock,
    )


def _client(hub: Hub, max_queue: int = 100) -> Client:
    client = Client(1, max_queue)
    hub.connect(client)
    return client


def _drain(client: Client) -> list[dict[str, Any]]:
    messages = [json.loads(data) for data, _ in client.queue]
    client.queue.clear()
    return messages


def _subscribe(hub: Hub, client: Client, channel: str, **fields: Any) -> list[dict[str, Any]]:
    hub.handle(client, json.dumps({"op": "subscribe", "channel": channel, "symbol": "BTC-USD", **fields}))
    return _drain(client)


def test_a_book_subscription_is_answered_then_gets_a_snapshot(hub: Hub) -> None:
    client = _client(hub)

    replies = _subscribe(hub, client, "book", id=4)

    assert [m["type"] for m in replies] == ["subscribed", "book_snapshot"]
    assert (replies[0]["id"], replies[0]["depth"], replies[1]["seq"]) == (4, 25, 0)


def test_an_update_is_encoded_once_for_every_subscriber(hub: Hub) -> None:
    first, second = _client(hub), _client(hub)
    _subscribe(hub, first, "book")
    _subscribe(hub, second, "book")

    hub.on_applied(hub.market.apply(update(level(1, "BUY", 6_500_000, 100))))

    [(sent_first, _)] = first.queue
    [(sent_second, _)] = second.queue
    assert sent_first is sent_second
    assert json.loads(sent_first)["bids"] == [["65000.00", "0.00100"]]


def test_trades_ticker_and_candles_go_to_their_subscribers_only(hub: Hub) -> None:
    trades, ticker = _client(hub), _client(hub)
    _subscribe(hub, trades, "trades")
    _subscribe(hub, ticker, "ticker")

    hub.on_applied(hub.market.apply(update(level(1, "SELL", 100, 1), trade(2, 100, 1))))

    assert [m["type"] for m in _drain(trades)] == ["trade"]
    assert [m["type"] for m in _drain(ticker)] == ["ticker"]


def test_an_unknown_symbol_and_a_missing_login_are_refused(hub: Hub) -> None:
    client = _client(hub)
    hub.handle(client, '{"op": "subscribe", "channel": "book", "symbol": "NOPE"}')
    hub.handle(client, '{"op": "subscribe", "channel": "executions"}')

    assert [m["code"] for m in _drain(client)] == ["UNKNOWN_SYMBOL", "NOT_AUTHENTICATED"]


def test_a_client_has_at_most_its_subscriptions(hub: Hub) -> None:
    client = _client(hub)
    for channel in ("book", "trades", "ticker"):
        _subscribe(hub, client, channel)

    assert _subscribe(hub, client, "candles")[0]["code"] == "TOO_MANY_SUBSCRIPTIONS"


def test_an_unsubscribed_client_gets_nothing_more(hub: Hub) -> None:
    client = _client(hub)
    _subscribe(hub, client, "trades")
    hub.handle(client, '{"op": "unsubscribe", "channel": "trades", "symbol": "BTC-USD"}')
    _drain(client)

    hub.on_applied(hub.market.apply(update(trade(1, 100, 1))))

    assert client.queue == type(client.queue)()


def test_a_full_queue_is_resynced_with_a_fresh_snapshot(hub: Hub) -> None:
    slow = _client(hub, max_queue=2)
    _subscribe(hub, slow, "book")

    for seq in range(1, 4):
        hub.on_applied(hub.market.apply(update(level(seq, "BUY", 100 + seq, 1))))

    types = [m["type"] for m in _drain(slow)]
    assert types[:2] == ["resync", "book_snapshot"]
    assert slow.close_code is None


def test_a_second_overflow_within_the_window_closes_the_client(hub: Hub, clock: Clock) -> None:
    slow, steady = _client(hub, max_queue=1), _client(hub)
    _subscribe(hub, slow, "trades")
    _subscribe(hub, steady, "trades")

    for seq in range(1, 5):
        clock.now += 1
        hub.on_applied(hub.market.apply(update(trade(seq, 100, 1))))

    assert slow.close_code == CloseCode.SLOW_CONSUMER
    assert len(steady.queue) == 4
    assert (
        hub.metrics.registry.get_sample_value(
            "exchange_relay_dropped_clients_total", {"reason": "SLOW_CONSUMER"}
        )
        == 1
    )


def test_a_resuming_client_gets_what_it_missed(hub: Hub) -> None:
    hub.market.apply(update(level(1, "BUY", 100, 1)))
    hub.market.apply(update(level(2, "BUY", 101, 2)))
    client = _client(hub)

    replies = _subscribe(hub, client, "book", resume_seq=1)

    assert (replies[1]["type"], replies[1]["prev_seq"], replies[1]["seq"]) == ("book", 1, 2)
    assert replies[1]["bids"] == [["1.01", "0.00002"]]


def test_a_stalled_writer_is_found(hub: Hub, clock: Clock) -> None:
    client = _client(hub)
    client.sending_since = clock.now

    clock.now += 5

    assert hub.stalled(3.0) == [client]


def _writing(hub: Hub) -> list[list[Run]]:
    """Let the hub write runs of messages, as the server does; what each flush wrote."""
    flushes: list[list[Run]] = []
    hub.write_now = flushes.append
    return flushes


def test_a_client_with_nothing_queued_gets_a_whole_batch_in_one_write_in_order(hub: Hub) -> None:
    flushes = _writing(hub)
    client = _client(hub)
    _subscribe(hub, client, "book")
    client.writable = lambda: not client.queue

    hub.on_applied(hub.market.apply(update(level(1, "BUY", 6_500_000, 100))))
    hub.on_applied(hub.market.apply(update(level(2, "SELL", 6_500_100, 200))))
    held_before_flush = list(client.queue)
    hub.flush()

    [[([written_to], batch)]] = flushes
    assert written_to is client and held_before_flush == []
    assert [json.loads(data)["seq"] for data in batch] == [1, 2]


def test_a_client_with_messages_queued_keeps_getting_them_through_its_queue(hub: Hub) -> None:
    flushes = _writing(hub)
    client = _client(hub)
    _subscribe(hub, client, "book")
    client.push(b'{"type":"pong"}', force=True)  # its writer still has this to send
    client.writable = lambda: not client.queue

    hub.on_applied(hub.market.apply(update(level(1, "BUY", 6_500_000, 100))))
    hub.flush()

    assert [json.loads(data)["type"] for data, _ in client.queue] == ["pong", "book"]
    assert flushes == []


def test_a_client_closed_during_a_batch_gets_nothing_written(hub: Hub) -> None:
    flushes = _writing(hub)
    client = _client(hub)
    _subscribe(hub, client, "book")
    client.writable = lambda: not client.queue

    hub.on_applied(hub.market.apply(update(level(1, "BUY", 6_500_000, 100))))
    hub.drop(client, CloseCode.POLICY, "FLOOD: test")
    hub.flush()

    assert flushes == []


def test_clients_that_get_the_same_messages_share_one_run_and_each_gets_its_own_in_order(hub: Hub) -> None:
    flushes = _writing(hub)
    book_only, book_and_trades, other_book = _client(hub), _client(hub), _client(hub)
    for client in (book_only, book_and_trades, other_book):
        _subscribe(hub, client, "book")
        client.writable = lambda: True
    _subscribe(hub, book_and_trades, "trades")

    hub.on_applied(hub.market.apply(update(level(1, "SELL", 6_500_000, 100))))
    hub.on_applied(hub.market.apply(update(trade(2, 6_500_000, 100), level(3, "SELL", 6_500_000, 0))))
    hub.flush()

    [runs] = flushes
    by_client = {id(c): [json.loads(data) for data in run] for clients, run in runs for c in clients}
    assert len(runs) == 2 and sorted(len(clients) for clients, _ in runs) == [1, 2]
    assert [(m["type"], m["seq"]) for m in by_client[id(book_only)]] == [("book", 1), ("book", 3)]
    assert by_client[id(other_book)] == by_client[id(book_only)]
    assert [m["type"] for m in by_client[id(book_and_trades)]] == ["book", "book", "trade"]  # as fanned out


def test_a_client_whose_queue_overflows_at_a_flush_is_resynced_to_the_book_after_the_batch(hub: Hub) -> None:
    _writing(hub)
    slow = _client(hub, max_queue=2)
    _subscribe(hub, slow, "book")
    slow.writable = lambda: False

    for seq in range(1, 5):
        hub.on_applied(hub.market.apply(update(level(seq, "BUY", 100 + seq, 1))))
    hub.flush()

    messages = _drain(slow)
    assert [m["type"] for m in messages] == ["resync", "book_snapshot"]
    assert messages[1]["seq"] == 4  # nothing older follows the snapshot
