"""The gateway on a real broker with real matchers: every endpoint, every refusal, nothing lost or doubled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exchange.client import ClientError
from gateway.sequencer import reply_partition_of
from runtime.signing import signed_headers
from tests.integration.gateway_fixtures import GatewayCluster, secret_of

# A registry change (AddSymbol, halt, resume) reaches every gateway's listing within this.
REGISTRY_SPREAD_S = 2.0

Running = Callable[..., tuple[GatewayCluster, str]]


def signed_post(
    url: str, path: str, body: bytes, key_id: str = "alice", *, timestamp_ms: int | None = None
) -> httpx.Response:
    """A POST signed by hand, so a test can send what the client never would."""
    headers = signed_headers(
        key_id,
        secret_of(key_id),
        timestamp_ms=timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000,
        method="POST",
        path=path,
        query="",
        body=body,
    )
    return httpx.post(url + path, content=body, headers={**headers, "Content-Type": "application/json"})


def order_body(**fields: Any) -> bytes:
    return json.dumps(
        {
            "symbol": "BTC-USD",
            "side": "buy",
            "type": "limit",
            "price": "65000.00",
            "quantity": "0.5",
            **fields,
        }
    ).encode()


# --- placing orders ------------------------------------------------------------------------------


def test_a_resting_limit_order_is_answered_201_with_its_state(running: Running) -> None:
    cluster, url = running()

    order = cluster.client(url).place_order("BTC-USD", "buy", "0.5", price="64000.00")

    assert (order["status"], order["remaining"], order["filled"]) == ("NEW", Decimal("0.5"), Decimal("0"))
    assert order["price"] == Decimal("64000.00") and int(order["order_id"]) >> 48 == 0


def test_a_crossing_order_is_answered_with_its_fills_and_average_price(running: Running) -> None:
    cluster, url = running()
    alice, bob = cluster.client(url, "alice"), cluster.client(url, "bob")
    alice.place_order("BTC-USD", "sell", "0.3", price="65000.00")
    alice.place_order("BTC-USD", "sell", "0.3", price="65001.00")

    order = bob.place_order("BTC-USD", "buy", "0.4", price="65001.00")

    assert order["status"] == "FILLED"
    assert [(f["price"], f["quantity"], f["liquidity"]) for f in order["fills"]] == [
        (Decimal("65000.00"), Decimal("0.300"), "taker"),
        (Decimal("65001.00"), Decimal("0.100"), "taker"),
    ]
    assert order["average_price"] == Decimal("65000.25")


def test_a_retried_order_with_the_same_client_order_id_is_answered_and_never_doubled(
    running: Running,
) -> None:
    cluster, url = running()
    alice = cluster.client(url)

    first = alice.place_order("BTC-USD", "buy", "0.5", price="64000.00", client_order_id="retry-1")
    again = alice.place_order("BTC-USD", "buy", "0.5", price="64000.00", client_order_id="retry-1")

    assert again["order_id"] == first["order_id"]
    assert [o["order_id"] for o in alice.open_orders("BTC-USD")] == [first["order_id"]]


def test_an_ioc_market_order_without_liquidity_is_done_with_nothing_filled(running: Running) -> None:
    cluster, url = running()

    order = cluster.client(url).place_order("BTC-USD", "sell", "0.5", time_in_force="IOC")

    assert (order["status"], order["filled"], order["remaining"]) == ("CANCELLED", 0, 0)
    assert order["fills"] == [] and order["average_price"] is None


# --- cancel, amend, read -------------------------------------------------------------------------


def test_an_order_is_cancelled_by_id_and_another_by_client_order_id(running: Running) -> None:
    cluster, url = running()
    alice = cluster.client(url)
    one = alice.place_order("BTC-USD", "buy", "0.5", price="64000.00")
    alice.place_order("BTC-USD", "buy", "0.5", price="64000.00", client_order_id="mine-2")

    by_id = alice.cancel_order(one["order_id"], "BTC-USD")
    by_client_id = alice.cancel_by_client_id("mine-2", "BTC-USD")

    assert (by_id["status"], by_client_id["status"]) == ("CANCELLED", "CANCELLED")
    assert alice.open_orders("BTC-USD") == []


def test_cancel_all_cancels_the_accounts_orders_only(running: Running) -> None:
    cluster, url = running()
    alice, bob = cluster.client(url, "alice"), cluster.client(url, "bob")
    for _ in range(3):
        alice.place_order("BTC-USD", "buy", "0.1", price="64000.00")
    bob.place_order("BTC-USD", "buy", "0.1", price="64000.00")

    answer = alice.cancel_all("BTC-USD")

    assert answer["status"] == "accepted"
    assert alice.open_orders("BTC-USD") == []
    assert len(bob.open_orders("BTC-USD")) == 1


def test_an_amend_changes_price_and_quantity(running: Running) -> None:
    cluster, url = running()
    alice = cluster.client(url)
    order = alice.place_order("BTC-USD", "buy", "0.5", price="64000.00")

    amended = alice.amend_order(order["order_id"], "BTC-USD", price="64100.00", quantity="0.4")

    assert (amended["price"], amended["quantity"]) == (Decimal("64100.00"), Decimal("0.400"))


def test_reads_see_the_accounts_own_writes(running: Running) -> None:
    cluster, url = running()
    alice = cluster.client(url)
    order = alice.place_order("BTC-USD", "sell", "0.5", price="66000.00", client_order_id="read-me")

    by_id = alice.get_order(order["order_id"], "BTC-USD")
    by_client_id = alice.get_order_by_client_id("read-me", "BTC-USD")
    book = alice.book("BTC-USD", depth=5)

    assert by_id["order_id"] == by_client_id["order_id"] == order["order_id"]
    assert book["asks"] == [{"price": Decimal("66000.00"), "quantity": Decimal("0.500"), "orders": 1}]


def test_symbols_are_listed_with_their_status_without_a_key(running: Running) -> None:
    _, url = running()

    symbols = httpx.get(f"{url}/api/v1/symbols").json()

    assert [(s["symbol"], s["partition"], s["status"]) for s in symbols] == [
        ("BTC-USD", 0, "trading"),
        ("ETH-USD", 1, "trading"),
    ]


# --- refusals at the edge: nothing reaches `orders` ----------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"price": "65000.001"}, 422, "OFF_TICK"),
        ({"quantity": "0.0005"}, 422, "OFF_LOT"),
        ({"quantity": "-1"}, 422, "NOT_POSITIVE"),
        ({"quantity": "NaN"}, 422, "MALFORMED_DECIMAL"),
        ({"quantity": "0"}, 422, "NOT_POSITIVE"),
        ({"price": "1234567890123456789"}, 422, "TOO_MANY_DIGITS"),
        ({"price": "6.5e4"}, 422, "MALFORMED_DECIMAL"),
        ({"price": 65000}, 422, "INVALID_FIELD"),
        ({"symbol": "NOPE-USD"}, 422, "UNKNOWN_SYMBOL"),
        ({"colour": "red"}, 422, "UNKNOWN_FIELD"),
        ({"side": "sideways"}, 422, "INVALID_VALUE"),
        ({"type": "market"}, 422, "PRICE_NOT_ALLOWED"),
        ({"price": None}, 422, "PRICE_REQUIRED"),
    ],
)
def test_an_invalid_order_is_refused_with_its_code_and_nothing_is_written(
    running: Running, fields: dict[str, Any], status: int, code: str
) -> None:
    cluster, url = running()
    before = cluster.orders_count()

    response = signed_post(url, "/api/v1/orders", order_body(**fields))

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"]
    assert cluster.orders_count() == before


def test_the_off_tick_message_names_the_tick_size(running: Running) -> None:
    _, url = running()

    response = signed_post(url, "/api/v1/orders", order_body(price="65000.001"))

    assert "tick size 0.01" in response.json()["message"]


def test_malformed_json_is_400_and_a_body_over_the_limit_is_413(running: Running) -> None:
    cluster, url = running()
    before = cluster.orders_count()

    malformed = signed_post(url, "/api/v1/orders", b'{"symbol": ')
    huge = signed_post(url, "/api/v1/orders", order_body(client_order_id="x" * 10_000))

    assert (malformed.status_code, malformed.json()["code"]) == (400, "MALFORMED_JSON")
    assert (huge.status_code, huge.json()["code"]) == (413, "BODY_TOO_LARGE")
    assert cluster.orders_count() == before


def test_a_matcher_rejection_is_a_4xx_with_its_reason(running: Running) -> None:
    cluster, url = running()

    with pytest.raises(ClientError) as band:
        cluster.client(url).place_order("BTC-USD", "buy", "0.5", price="80000.00")
    with pytest.raises(ClientError) as post_only:
        cluster.client(url, "bob").place_order("BTC-USD", "sell", "0.1", price="64000.00")
        cluster.client(url).place_order("BTC-USD", "buy", "0.1", price="64000.00", post_only=True)

    assert (band.value.status, band.value.code) == (422, "PRICE_OUT_OF_BAND")
    assert (post_only.value.status, post_only.value.code) == (409, "POST_ONLY_WOULD_TAKE")


def test_unknown_orders_and_symbols_are_404(running: Running) -> None:
    cluster, url = running()
    alice = cluster.client(url)

    with pytest.raises(ClientError) as unknown_order:
        alice.cancel_order(str(12345), "BTC-USD")
    with pytest.raises(ClientError) as no_partition:
        alice.get_order(str(7 << 48), "BTC-USD")  # partition 7 does not exist
    with pytest.raises(ClientError) as unknown_symbol:
        alice.book("NOPE-USD")

    assert (unknown_order.value.status, unknown_order.value.code) == (404, "UNKNOWN_ORDER")
    assert (no_partition.value.status, no_partition.value.code) == (404, "UNKNOWN_ORDER")
    assert (unknown_symbol.value.status, unknown_symbol.value.code) == (404, "UNKNOWN_SYMBOL")


# --- the attack set ------------------------------------------------------------------------------


def test_bad_signature_stale_timestamp_and_replay_are_401_and_write_nothing(running: Running) -> None:
    cluster, url = running()
    before = cluster.orders_count()
    body = order_body()
    headers = signed_headers(
        "alice", secret_of("alice"), timestamp_ms=time.time_ns() // 1_000_000,
        method="POST", path="/api/v1/orders", query="", body=body,
    )  # fmt: skip
    headers["Content-Type"] = "application/json"

    tampered = httpx.post(f"{url}/api/v1/orders", content=order_body(quantity="50"), headers=headers)
    stale = signed_post(url, "/api/v1/orders", body, timestamp_ms=time.time_ns() // 1_000_000 - 60_000)
    unsigned = httpx.post(f"{url}/api/v1/orders", content=body)
    first = httpx.post(f"{url}/api/v1/orders", content=body, headers=headers)
    replayed = httpx.post(f"{url}/api/v1/orders", content=body, headers=headers)

    assert [(r.status_code, r.json()["code"]) for r in (tampered, stale, unsigned, replayed)] == [
        (401, "BAD_SIGNATURE"),
        (401, "STALE_TIMESTAMP"),
        (401, "MISSING_SIGNATURE"),
        (401, "REPLAYED_REQUEST"),
    ]
    assert first.status_code == 201
    assert cluster.orders_count() == before + 1  # the one genuine order
    metrics = httpx.get(f"{url}/metrics").text
    assert 'exchange_gateway_refused_total{code="BAD_SIGNATURE"} 1.0' in metrics
    assert 'exchange_gateway_refused_total{code="REPLAYED_REQUEST"} 1.0' in metrics


def test_another_accounts_order_is_404_never_visible_never_cancellable(running: Running) -> None:
    cluster, url = running()
    order = cluster.client(url, "alice").place_order("BTC-USD", "buy", "0.5", price="64000.00")
    bob = cluster.client(url, "bob")

    with pytest.raises(ClientError) as seen:
        bob.get_order(order["order_id"], "BTC-USD")
    with pytest.raises(ClientError) as cancelled:
        bob.cancel_order(order["order_id"], "BTC-USD")

    assert (seen.value.status, seen.value.code) == (404, "UNKNOWN_ORDER")
    assert (cancelled.value.status, cancelled.value.code) == (404, "UNKNOWN_ORDER")
    assert cluster.client(url, "alice").get_order(order["order_id"], "BTC-USD")["status"] == "NEW"


def test_a_key_without_the_trade_scope_is_403_and_writes_nothing(running: Running) -> None:
    cluster, url = running()
    before = cluster.orders_count()

    response = signed_post(url, "/api/v1/orders", order_body(), key_id="viewer")

    assert (response.status_code, response.json()["code"]) == (403, "MISSING_SCOPE")
    assert cluster.orders_count() == before


def test_a_flood_is_429_with_retry_after_and_the_excess_writes_nothing(running: Running) -> None:
    cluster, url = running(gateway_rate_per_s=1.0, gateway_rate_burst=3)
    before = cluster.orders_count()

    answers = [signed_post(url, "/api/v1/orders", order_body(price="64000.00")) for _ in range(10)]

    statuses = [r.status_code for r in answers]
    assert statuses.count(201) <= 4 and statuses.count(429) >= 6
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status_code == 429)
    assert cluster.orders_count() == before + statuses.count(201)


# --- admin and symbols at runtime ----------------------------------------------------------------


def test_a_symbol_added_while_running_is_tradable_through_a_gateway_already_up(running: Running) -> None:
    cluster, url = running()
    other = cluster.start_gateway()  # up before the symbol exists
    listing = {
        "symbol": "ADA-USD", "partition": 1, "tick_size": "0.0001", "lot_size": "1", "min_qty": "1",
        "max_qty": "1000000", "reference_price": "0.4500", "band_percent": "10", "status": "trading",
    }  # fmt: skip

    added = cluster.client(url, "ops").add_symbol(listing)
    deadline = time.monotonic() + REGISTRY_SPREAD_S
    while "ADA-USD" not in {s["symbol"] for s in httpx.get(f"{other}/api/v1/symbols").json()}:
        assert time.monotonic() < deadline, "the other gateway did not learn the symbol within 2 s"
        time.sleep(0.05)
    order = cluster.client(other).place_order("ADA-USD", "buy", "100", price="0.4400")

    assert added["status"] == "accepted"
    assert (order["status"], order["price"]) == ("NEW", Decimal("0.4400"))


def test_a_halted_symbol_refuses_orders_until_resumed(running: Running) -> None:
    cluster, url = running()
    ops, alice = cluster.client(url, "ops"), cluster.client(url)

    ops.halt_symbol("ETH-USD")
    with pytest.raises(ClientError) as halted:
        alice.place_order("ETH-USD", "buy", "1", price="3500.00")
    status_while_halted = _status_within(url, "ETH-USD", "halted", REGISTRY_SPREAD_S)
    ops.resume_symbol("ETH-USD")
    order = alice.place_order("ETH-USD", "buy", "1", price="3500.00")

    assert (halted.value.status, halted.value.code) == (409, "SYMBOL_HALTED")
    assert status_while_halted == "halted"
    assert order["status"] == "NEW"


def test_admin_endpoints_need_the_admin_scope(running: Running) -> None:
    cluster, url = running()

    with pytest.raises(ClientError) as refused:
        cluster.client(url, "alice").halt_symbol("ETH-USD")

    assert (refused.value.status, refused.value.code) == (403, "MISSING_SCOPE")


def _status(url: str, symbol: str) -> str:
    return next(s["status"] for s in httpx.get(f"{url}/api/v1/symbols").json() if s["symbol"] == symbol)


def _status_within(url: str, symbol: str, wanted: str, guard_s: float) -> str:
    """``symbol``'s status as ``GET /symbols`` lists it once it is ``wanted``, or when ``guard_s`` ran out.

    The listing learns of a halt from the registry topic, moments after the matcher answered it.
    """
    deadline = time.monotonic() + guard_s
    while (status := _status(url, symbol)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


# --- replies: pending, and each instance its own -------------------------------------------------


def test_an_order_whose_reply_is_late_is_202_pending_and_executed_once_its_matcher_runs(
    gateway_cluster: GatewayCluster,
) -> None:
    gateway_cluster.start_matcher(1)  # partition 0 (BTC-USD) has no matcher yet
    url = gateway_cluster.start_gateway(gateway_reply_wait_s=0.5)
    alice = gateway_cluster.client(url)

    pending = alice.place_order("BTC-USD", "buy", "0.5", price="64000.00", client_order_id="late-1")
    gateway_cluster.start_matcher(0)
    found = _when_answered(lambda: alice.get_order_by_client_id("late-1", "BTC-USD"))

    assert (pending["status"], pending["order_id"]) == ("pending", None)
    assert found["status"] == "NEW" and found["client_order_id"] == "late-1"
    assert len(alice.open_orders("BTC-USD")) == 1


def _when_answered(read: Callable[[], dict[str, Any]], guard_s: float = 60.0) -> dict[str, Any]:
    """A read retried while the matcher is still recovering (504: a read changes nothing)."""
    deadline = time.monotonic() + guard_s
    while True:
        try:
            return read()
        except ClientError as exc:
            if exc.status != 504 or time.monotonic() > deadline:
                raise


def test_two_gateway_processes_sharing_a_reply_partition_each_get_exactly_their_own(
    gateway_cluster: GatewayCluster,
) -> None:
    ids = [f"gw-test-{n}" for n in range(50)]
    first, second = next(
        (a, b) for a in ids for b in ids if a < b and reply_partition_of(a, 2) == reply_partition_of(b, 2)
    )
    for partition in (0, 1):
        gateway_cluster.start_matcher(partition)
    urls = [gateway_cluster.start_gateway_process(first), gateway_cluster.start_gateway_process(second)]
    clients = [gateway_cluster.client(u, "alice") for u in urls]

    answers = [
        (
            n,
            clients[n % 2].place_order(
                "BTC-USD", "buy", "0.001", price="64000.00", client_order_id=f"two-{n}"
            ),
        )
        for n in range(20)
    ]

    assert all(order["client_order_id"] == f"two-{n}" and order["status"] == "NEW" for n, order in answers)
    for url in urls:
        metrics = httpx.get(f"{url}/metrics").text
        assert "exchange_gateway_late_replies_total 0.0" in metrics
