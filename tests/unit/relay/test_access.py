"""Who a WebSocket client is: the API-key HMAC of an `auth` request."""

from __future__ import annotations

import pytest

from relay.access import Access, auth_text
from relay.protocol import ErrorCode, ProtocolError, Request
from runtime.keys import ApiKey, Scope
from runtime.signing import sign

NOW_S = 1_800_000_000.0
KEYS = {
    "reader": ApiKey("reader", "reader-secret-of-sixteen", "alice", frozenset({Scope.READ})),
    "trader": ApiKey("trader", "trader-secret-of-sixteen", "bob", frozenset({Scope.TRADE})),
}


def _auth(key: str, secret: str, timestamp_ms: int = int(NOW_S * 1000)) -> Request:
    timestamp = str(timestamp_ms)
    return Request("auth", 1, key=key, timestamp=timestamp, signature=sign(secret, auth_text(timestamp)))


def test_a_well_signed_fresh_request_names_the_keys_account() -> None:
    assert (
        Access(KEYS, 5.0).authenticate(_auth("reader", "reader-secret-of-sixteen"), NOW_S).account == "alice"
    )


def test_the_signed_text_is_that_of_a_get_of_the_ws_path() -> None:
    assert auth_text("123") == b"123\nGET\n/ws\n\n"


@pytest.mark.parametrize(
    "request_",
    [
        _auth("nobody", "reader-secret-of-sixteen"),
        _auth("reader", "another-secret-of-sixteen"),
        _auth("reader", "reader-secret-of-sixteen", int(NOW_S * 1000) - 6_000),
        _auth("trader", "trader-secret-of-sixteen"),
        Request("auth", 1, key="reader", timestamp="soon", signature="00"),
    ],
    ids=["unknown key", "wrong secret", "stale", "no read scope", "malformed timestamp"],
)
def test_a_bad_auth_is_refused(request_: Request) -> None:
    with pytest.raises(ProtocolError) as refused:
        Access(KEYS, 5.0).authenticate(request_, NOW_S)

    assert refused.value.code is ErrorCode.AUTH_FAILED


def test_a_signature_counts_once() -> None:
    access = Access(KEYS, 5.0)
    request = _auth("reader", "reader-secret-of-sixteen")
    access.authenticate(request, NOW_S)

    with pytest.raises(ProtocolError):
        access.authenticate(request, NOW_S)
