"""The gateway's request check: key, signature, freshness, replay, scope and rate, in that order."""

from __future__ import annotations

import dataclasses

import pytest

from runtime.auth import Authenticator, AuthError, SignedRequest
from runtime.keys import ApiKey, ReplayGuard, Scope
from runtime.ratelimit import RateLimiter
from runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers

TRADER_SECRET = "trader-secret-0123456789"
READER_SECRET = "reader-secret-0123456789"
TRADER = ApiKey("trader", TRADER_SECRET, "acct-1", frozenset({Scope.READ, Scope.TRADE}))
READER = ApiKey("reader", READER_SECRET, "acct-2", frozenset({Scope.READ}))
WINDOW_S = 5.0
NOW_S = 1_700_000_000.0


def _authenticator(rate: float = 1_000.0, burst: int = 1_000) -> Authenticator:
    return Authenticator({TRADER.key_id: TRADER, READER.key_id: READER}, WINDOW_S, rate, burst)


def _signed(
    key: ApiKey = TRADER,
    *,
    at_s: float = NOW_S,
    method: str = "POST",
    path: str = "/api/v1/orders",
    query: str = "",
    body: bytes = b'{"symbol":"BTC-USD","side":"buy","quantity":"0.5","price":"65000.00"}',
) -> SignedRequest:
    """A request signed with ``key``'s secret at ``at_s`` (seconds since the epoch)."""
    headers = signed_headers(
        key.key_id,
        key.secret,
        timestamp_ms=round(at_s * 1000),
        method=method,
        path=path,
        query=query,
        body=body,
    )
    return SignedRequest(
        key_id=key.key_id,
        timestamp=headers[TIMESTAMP_HEADER],
        signature=headers[SIGNATURE_HEADER],
        method=method,
        path=path,
        query=query,
        body=body,
    )


def _refusal(auth: Authenticator, request: SignedRequest, scope: Scope = Scope.TRADE) -> AuthError:
    with pytest.raises(AuthError) as caught:
        auth.check(request, scope, now_s=NOW_S)
    return caught.value


# --- accepted ------------------------------------------------------------------------------------


def test_a_well_signed_fresh_request_returns_its_key() -> None:
    auth = _authenticator()

    key = auth.check(_signed(), Scope.TRADE, now_s=NOW_S)

    assert key == TRADER


def test_a_signature_in_upper_case_hex_is_accepted() -> None:
    request = _signed()
    upper = dataclasses.replace(request, signature=request.signature.upper())

    key = _authenticator().check(upper, Scope.TRADE, now_s=NOW_S)

    assert key == TRADER


@pytest.mark.parametrize("skew_s", [-WINDOW_S, WINDOW_S])
def test_a_timestamp_exactly_at_the_edge_of_the_window_is_accepted(skew_s: float) -> None:
    key = _authenticator().check(_signed(at_s=NOW_S + skew_s), Scope.TRADE, now_s=NOW_S)

    assert key == TRADER


# --- who is asking -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["key_id", "timestamp", "signature"])
def test_a_request_without_one_of_the_three_headers_is_401_missing_signature(header: str) -> None:
    request = dataclasses.replace(_signed(), **{header: None})

    error = _refusal(_authenticator(), request)

    assert (error.status, error.code) == (401, "MISSING_SIGNATURE")


def test_an_unknown_key_is_401_unknown_key() -> None:
    stranger = ApiKey("stranger", "stranger-secret-012345", "acct-3", frozenset({Scope.TRADE}))

    error = _refusal(_authenticator(), _signed(stranger))

    assert (error.status, error.code) == (401, "UNKNOWN_KEY")


# --- freshness -----------------------------------------------------------------------------------


def test_a_timestamp_older_than_the_window_is_401_stale_timestamp() -> None:
    error = _refusal(_authenticator(), _signed(at_s=NOW_S - WINDOW_S - 0.001))

    assert (error.status, error.code) == (401, "STALE_TIMESTAMP")


def test_a_timestamp_further_ahead_than_the_window_is_401_stale_timestamp() -> None:
    error = _refusal(_authenticator(), _signed(at_s=NOW_S + WINDOW_S + 0.001))

    assert (error.status, error.code) == (401, "STALE_TIMESTAMP")


def test_a_stale_timestamp_is_refused_naming_the_skew_and_the_window() -> None:
    error = _refusal(_authenticator(), _signed(at_s=NOW_S - 60))

    assert str(error) == "X-Timestamp is 60.0 s from the server's clock (the window is 5 s)"


@pytest.mark.parametrize("timestamp", ["soon", "1.7e12", "-1700000000000", "1700000000000.5", "1" * 17])
def test_a_timestamp_that_is_not_whole_milliseconds_is_401_bad_timestamp(timestamp: str) -> None:
    request = dataclasses.replace(_signed(), timestamp=timestamp)

    error = _refusal(_authenticator(), request)

    assert (error.status, error.code) == (401, "BAD_TIMESTAMP")


def test_a_timestamp_with_a_non_ascii_digit_is_401_bad_timestamp() -> None:
    # Headers are decoded as latin-1, so the byte 0xB2 arrives as "²", which str.isdigit() accepts.
    request = dataclasses.replace(_signed(), timestamp="1700000000000\N{SUPERSCRIPT TWO}")

    error = _refusal(_authenticator(), request)

    assert (error.status, error.code) == (401, "BAD_TIMESTAMP")


# --- the signature -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tampering",
    [
        {"body": b'{"symbol":"BTC-USD","side":"buy","quantity":"5.0","price":"65000.00"}'},
        {"path": "/api/v1/orders/by-client-id/x"},
        {"query": "symbol=ETH-USD"},
        {"method": "DELETE"},
    ],
    ids=["body", "path", "query", "method"],
)
def test_a_request_changed_after_signing_is_401_bad_signature(tampering: dict[str, object]) -> None:
    request = dataclasses.replace(_signed(), **tampering)

    error = _refusal(_authenticator(), request)

    assert (error.status, error.code) == (401, "BAD_SIGNATURE")


def test_a_request_signed_with_another_keys_secret_is_401_bad_signature() -> None:
    forged = _signed(dataclasses.replace(TRADER, secret=READER_SECRET))

    error = _refusal(_authenticator(), forged)

    assert (error.status, error.code) == (401, "BAD_SIGNATURE")


def test_a_signature_with_non_ascii_characters_is_401_bad_signature() -> None:
    # Headers are decoded as latin-1: any byte above 0x7F arrives as a non-ASCII character.
    request = dataclasses.replace(_signed(), signature="\N{LATIN SMALL LETTER E WITH ACUTE}" * 64)

    error = _refusal(_authenticator(), request)

    assert (error.status, error.code) == (401, "BAD_SIGNATURE")


# --- replay --------------------------------------------------------------------------------------


def test_the_same_signed_request_twice_is_401_replayed_request() -> None:
    auth = _authenticator()
    request = _signed()
    auth.check(request, Scope.TRADE, now_s=NOW_S)

    error = _refusal(auth, request)

    assert (error.status, error.code) == (401, "REPLAYED_REQUEST")


def test_the_same_signature_resent_in_upper_case_is_still_a_replay() -> None:
    auth = _authenticator()
    request = _signed()
    auth.check(request, Scope.TRADE, now_s=NOW_S)

    error = _refusal(auth, dataclasses.replace(request, signature=request.signature.upper()))

    assert (error.status, error.code) == (401, "REPLAYED_REQUEST")


# --- scope and rate ------------------------------------------------------------------------------


def test_a_key_without_the_scope_is_403_missing_scope() -> None:
    error = _refusal(_authenticator(), _signed(READER), Scope.TRADE)

    assert (error.status, error.code) == (403, "MISSING_SCOPE")
    assert str(error) == "this API key lacks the 'trade' scope"


def test_a_request_beyond_the_burst_is_429_rate_limited_with_a_retry_after_of_at_least_a_second() -> None:
    # One token, refilled once a minute: the second request must wait, whatever the test's speed.
    auth = _authenticator(rate=1 / 60, burst=1)
    auth.check(_signed(at_s=NOW_S), Scope.TRADE, now_s=NOW_S)

    error = _refusal(auth, _signed(at_s=NOW_S + 0.001))

    assert (error.status, error.code) == (429, "RATE_LIMITED")
    assert error.retry_after_s is not None
    assert error.retry_after_s >= 1


def test_the_rate_limit_of_one_key_does_not_hold_back_another() -> None:
    auth = _authenticator(rate=1 / 60, burst=1)
    auth.check(_signed(TRADER), Scope.READ, now_s=NOW_S)

    key = auth.check(_signed(READER), Scope.READ, now_s=NOW_S)

    assert key == READER


# --- the token bucket ----------------------------------------------------------------------------


def test_a_full_bucket_admits_its_burst_at_once() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)

    waits = [limiter.admit("trader", 100.0) for _ in range(3)]

    assert waits == [0.0, 0.0, 0.0]


def test_an_empty_bucket_says_how_long_until_the_next_token() -> None:
    limiter = RateLimiter(rate=2.0, burst=1)
    limiter.admit("trader", 100.0)

    wait = limiter.admit("trader", 100.0)

    assert wait == pytest.approx(0.5)


def test_tokens_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=1)
    limiter.admit("trader", 100.0)

    wait = limiter.admit("trader", 100.5)

    assert wait == 0.0


def test_a_refused_request_waits_less_once_tokens_have_partly_refilled() -> None:
    limiter = RateLimiter(rate=2.0, burst=1)
    limiter.admit("trader", 100.0)

    wait = limiter.admit("trader", 100.25)

    assert wait == pytest.approx(0.25)


def test_tokens_never_refill_beyond_the_burst() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)
    limiter.admit("trader", 100.0)

    waits = [limiter.admit("trader", 1_000.0) for _ in range(3)]

    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.5)


# --- the replay guard ----------------------------------------------------------------------------


def test_a_signature_is_new_only_the_first_time() -> None:
    guard = ReplayGuard(window_s=5.0)

    answers = [guard.first_time("ab12", 100.0), guard.first_time("ab12", 100.0)]

    assert answers == [True, False]


def test_a_signature_is_remembered_for_two_windows() -> None:
    # A timestamp may be a window ahead of the clock, so its request stays acceptable two windows long.
    guard = ReplayGuard(window_s=5.0)
    guard.first_time("ab12", 100.0)

    assert guard.first_time("ab12", 109.999) is False


def test_a_signature_is_forgotten_after_two_windows() -> None:
    guard = ReplayGuard(window_s=5.0)
    guard.first_time("ab12", 100.0)

    assert guard.first_time("ab12", 110.0) is True


def test_a_full_guard_forgets_its_oldest_signature_first() -> None:
    guard = ReplayGuard(window_s=5.0, capacity=3)
    for signature in ["s0", "s1", "s2", "s3"]:
        guard.first_time(signature, 100.0)

    assert guard.first_time("s0", 100.0) is True


def test_a_full_guard_still_remembers_its_newest_signature() -> None:
    guard = ReplayGuard(window_s=5.0, capacity=3)
    for signature in ["s0", "s1", "s2", "s3"]:
        guard.first_time(signature, 100.0)

    assert guard.first_time("s3", 100.0) is False


def test_the_guard_never_holds_more_signatures_than_its_capacity() -> None:
    guard = ReplayGuard(window_s=5.0, capacity=10)

    for index in range(1_000):
        guard.first_time(f"sig-{index}", 100.0)

    assert len(guard._seen) <= 10
