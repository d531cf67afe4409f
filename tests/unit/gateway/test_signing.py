"""The request signature shared by the gateway, the Python client and the web page."""

from __future__ import annotations

from runtime.signing import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signature_matches,
    signed_headers,
    signed_text,
)

SECRET = "demo-secret-0123456789"
BODY = b'{"side":"buy"}'
# HMAC-SHA256(SECRET, the literal signed texts below), computed independently with
# `printf '...' | openssl dgst -sha256 -hmac demo-secret-0123456789`.
POST_SIGNATURE = "97c30d906098c87f1df921f145e6b309ddc4d9155a982eb3106b37989c6b1474"
GET_SIGNATURE = "cc97454ba3addabe0a0c593161e44347cfca1603781db720bc1b8509258a5c2c"


def test_the_signed_text_is_timestamp_method_path_query_and_body_joined_by_newlines() -> None:
    text = signed_text("1700000000000", "post", "/api/v1/orders", "symbol=BTC-USD", BODY)

    assert text == b'1700000000000\nPOST\n/api/v1/orders\nsymbol=BTC-USD\n{"side":"buy"}'


def test_a_request_without_query_or_body_signs_them_as_empty() -> None:
    text = signed_text("1700000000000", "GET", "/api/v1/symbols", "", b"")

    assert text == b"1700000000000\nGET\n/api/v1/symbols\n\n"


def test_the_signature_is_lowercase_hex_hmac_sha256_of_the_signed_text() -> None:
    literal = b'1700000000000\nPOST\n/api/v1/orders\nsymbol=BTC-USD\n{"side":"buy"}'

    assert sign(SECRET, literal) == POST_SIGNATURE


def test_signed_headers_carry_the_key_id_the_timestamp_and_the_signature() -> None:
    headers = signed_headers(
        "demo",
        SECRET,
        timestamp_ms=1_700_000_000_000,
        method="POST",
        path="/api/v1/orders",
        query="symbol=BTC-USD",
        body=BODY,
    )

    assert headers == {
        KEY_HEADER: "demo",
        TIMESTAMP_HEADER: "1700000000000",
        SIGNATURE_HEADER: POST_SIGNATURE,
    }


def test_signed_headers_of_a_get_sign_an_empty_query_and_body() -> None:
    headers = signed_headers(
        "demo",
        SECRET,
        timestamp_ms=1_700_000_000_000,
        method="get",
        path="/api/v1/symbols",
        query="",
        body=b"",
    )

    assert headers[SIGNATURE_HEADER] == GET_SIGNATURE


def test_a_signature_from_sign_matches_its_text() -> None:
    text = signed_text("1700000000000", "POST", "/api/v1/orders", "", BODY)

    assert signature_matches(SECRET, sign(SECRET, text), text)


def test_a_signature_matches_in_upper_case_hex_too() -> None:
    assert signature_matches(
        SECRET,
        POST_SIGNATURE.upper(),
        signed_text("1700000000000", "POST", "/api/v1/orders", "symbol=BTC-USD", BODY),
    )


def test_a_signature_does_not_match_another_text() -> None:
    other = signed_text("1700000000001", "POST", "/api/v1/orders", "symbol=BTC-USD", BODY)

    assert not signature_matches(SECRET, POST_SIGNATURE, other)


def test_a_signature_does_not_match_under_another_secret() -> None:
    text = signed_text("1700000000000", "POST", "/api/v1/orders", "symbol=BTC-USD", BODY)

    assert not signature_matches("another-secret-0123456789", POST_SIGNATURE, text)
