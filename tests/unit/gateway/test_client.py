"""The Python client: signs every attempt afresh, retries only what is safe, and speaks Decimal.

The client's own behaviour is under test here, so an ``httpx.MockTransport`` stands in for the
gateway and a fake clock for ``time`` (a retry's pause advances it; nothing really sleeps).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

import exchange.client as client_module
from exchange.client import ClientError, ExchangeClient, _decimal_text, _with_decimals
from runtime.auth import Authenticator, SignedRequest
from runtime.keys import ApiKey, Scope
from runtime.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

SECRET = "trader-secret-0123456789"
KEY = ApiKey("trader", SECRET, "acct-1", frozenset({Scope.READ, Scope.TRADE}))
START_NS = 1_700_000_000_000_000_000
ORDER = {
    "order_id": "5",
    "client_order_id": "cli-1",
    "symbol": "BTC-USD",
    "price": "65000.00",
    "quantity": "0.50000",
    "filled": "0.00000",
    "remaining": "0.50000",
    "average_price": None,
    "status": "NEW",
    "fills": [],
    "request_id": "req-1",
}

Answer = httpx.Response | Exception
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Stands in for the ``time`` module: wall time that moves only when the client pauses."""

    def __init__(self) -> None:
        self.now_ns = START_NS
        self.pauses: list[float] = []

    def time_ns(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now_ns += round(seconds * 1e9)


class Gateway:
    """A transport stub: answers each request with the next scripted answer and keeps the requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers: Iterator[Answer] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[bytes]:
        return [request.content for request in self.requests]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(client_module, "time", fake)
    return fake


def _client(gateway: Handler, retries: int = 3) -> ExchangeClient:
    http = httpx.Client(base_url="http://gateway.test", transport=httpx.MockTransport(gateway))
    return ExchangeClient("http://gateway.test", KEY.key_id, SECRET, retries=retries, http=http)


def _refusal(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message}, headers=headers)


def _connection_refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


def _as_signed(request: httpx.Request) -> SignedRequest:
    """What the gateway would read from ``request``."""
    return SignedRequest(
        key_id=request.headers.get(KEY_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        method=request.method,
        path=request.url.path,
        query=request.url.query.decode(),
        body=request.content,
    )


# --- decimals ------------------------------------------------------------------------------------


def test_decimal_fields_of_an_answer_become_decimals_at_any_depth() -> None:
    answer = {"orders": [{"price": "65000.00", "fills": [{"quantity": "0.00001"}]}]}

    assert _with_decimals(answer) == {
        "orders": [{"price": Decimal("65000.00"), "fills": [{"quantity": Decimal("0.00001")}]}]
    }


def test_other_fields_of_an_answer_stay_as_they_are() -> None:
    answer = {"order_id": "844424930131973", "tick_size": "0.01", "average_price": None, "orders": 2}

    assert _with_decimals(answer) == answer


def test_a_float_price_is_refused_with_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a float"):
        _decimal_text(0.1)


def test_a_decimal_goes_out_written_out_without_an_exponent() -> None:
    assert _decimal_text(Decimal("1E-7")) == "0.0000001"


def test_a_string_or_an_int_goes_out_as_written() -> None:
    assert (_decimal_text("65000.00"), _decimal_text(3)) == ("65000.00", "3")


def test_a_float_quantity_is_refused_before_anything_is_sent(clock: FakeClock) -> None:
    gateway = Gateway()

    with pytest.raises(TypeError):
        _client(gateway).place_order("BTC-USD", "buy", 0.5, price="65000")

    assert gateway.requests == []


# --- signing -------------------------------------------------------------------------------------


def test_every_attempt_is_signed_so_the_gateway_accepts_it(clock: FakeClock) -> None:
    gateway = Gateway(_refusal(503, "UNAVAILABLE", "try again"), httpx.Response(201, json=ORDER))
    _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")
    auth = Authenticator({KEY.key_id: KEY}, window_s=5.0, rate=1_000.0, burst=1_000)

    keys = [
        auth.check(_as_signed(request), Scope.TRADE, now_s=clock.now_ns / 1e9) for request in gateway.requests
    ]

    assert keys == [KEY, KEY]


def test_a_retry_is_signed_with_a_fresh_timestamp(clock: FakeClock) -> None:
    gateway = Gateway(_refusal(503, "UNAVAILABLE", "try again"), httpx.Response(201, json=ORDER))

    _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")

    first, retry = (int(request.headers[TIMESTAMP_HEADER]) for request in gateway.requests)
    assert retry > first


def test_a_query_is_signed_as_sent(clock: FakeClock) -> None:
    gateway = Gateway(httpx.Response(200, json=ORDER))
    _client(gateway).get_order("5", "BRK.B")
    auth = Authenticator({KEY.key_id: KEY}, window_s=5.0, rate=1_000.0, burst=1_000)

    key = auth.check(_as_signed(gateway.requests[0]), Scope.READ, now_s=clock.now_ns / 1e9)

    assert key == KEY


# --- retries -------------------------------------------------------------------------------------


def test_a_503_is_retried_with_the_same_body(clock: FakeClock) -> None:
    gateway = Gateway(_refusal(503, "UNAVAILABLE", "try again"), httpx.Response(201, json=ORDER))

    _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")

    first, retry = gateway.bodies()
    assert retry == first


def test_a_retried_order_keeps_its_client_order_id(clock: FakeClock) -> None:
    gateway = Gateway(_refusal(503, "UNAVAILABLE", "try again"), httpx.Response(201, json=ORDER))

    _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")

    first, retry = (json.loads(body)["client_order_id"] for body in gateway.bodies())
    assert first and retry == first


def test_a_transport_error_is_retried_with_the_same_body(clock: FakeClock) -> None:
    gateway = Gateway(_connection_refused(), httpx.Response(201, json=ORDER))

    _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")

    first, retry = gateway.bodies()
    assert retry == first


def test_a_retry_waits_as_long_as_retry_after_says(clock: FakeClock) -> None:
    gateway = Gateway(
        _refusal(429, "RATE_LIMITED", "slow down", **{"Retry-After": "2"}), httpx.Response(200, json=[])
    )

    _client(gateway).symbols()

    assert clock.pauses == [2.0]


def test_a_422_is_not_retried(clock: FakeClock) -> None:
    gateway = Gateway(_refusal(422, "OFF_TICK", "price 65000.001 is not a multiple of the tick size 0.01"))

    with pytest.raises(ClientError):
        _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.001")

    assert len(gateway.requests) == 1


def test_a_refusal_raises_client_error_with_its_status_code_and_message(clock: FakeClock) -> None:
    message = "price 65000.001 is not a multiple of the tick size 0.01"
    gateway = Gateway(_refusal(422, "OFF_TICK", message))

    with pytest.raises(ClientError) as caught:
        _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.001")

    assert (caught.value.status, caught.value.code, caught.value.message) == (422, "OFF_TICK", message)


def test_the_last_attempts_503_is_raised_as_a_client_error(clock: FakeClock) -> None:
    gateway = Gateway(*[_refusal(503, "UNAVAILABLE", "try again")] * 3)

    with pytest.raises(ClientError) as caught:
        _client(gateway, retries=2).symbols()

    assert (caught.value.status, len(gateway.requests)) == (503, 3)


def test_the_last_attempts_transport_error_is_raised(clock: FakeClock) -> None:
    gateway = Gateway(*[_connection_refused() for _ in range(3)])

    with pytest.raises(httpx.ConnectError):
        _client(gateway, retries=2).symbols()

    assert len(gateway.requests) == 3


# --- answers -------------------------------------------------------------------------------------


def test_an_answer_comes_back_with_decimals(clock: FakeClock) -> None:
    gateway = Gateway(httpx.Response(201, json=ORDER))

    order = _client(gateway).place_order("BTC-USD", "buy", "0.5", price="65000.00")

    assert (order["price"], order["quantity"], order["order_id"]) == (
        Decimal("65000.00"),
        Decimal("0.50000"),
        "5",
    )


def test_an_error_answer_that_is_not_a_json_object_raises_client_error(clock: FakeClock) -> None:
    # A proxy in front of the gateway may answer with any JSON, e.g. a bare string.
    gateway = Gateway(httpx.Response(502, json="bad gateway"))

    with pytest.raises(ClientError) as caught:
        _client(gateway).symbols()

    assert caught.value.status == 502
