"""The page's JavaScript run in node against the Python it mirrors: the signature and the checksum."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib

import pytest

from relay.web import WEB_ROOT
from runtime.signing import sign, signed_text

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

ORDER_BODY = (
    '{"symbol":"BTC-USD","side":"buy","type":"limit","price":"65000.00","quantity":"0.5","note":"호가"}'
)


def _run_js(expression: str) -> object:
    """The JSON value of an expression over the page's modules (awaited), computed by node."""
    script = (
        f'import * as signing from "{(WEB_ROOT / "signing.js").as_uri()}";\n'
        f'import * as book from "{(WEB_ROOT / "book.js").as_uri()}";\n'
        f"console.log(JSON.stringify(await ({expression})));\n"
    )
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("post", "/api/v1/orders", "", ORDER_BODY),
        ("GET", "/api/v1/orders", "symbol=BTC-USD", ""),
        ("DELETE", "/api/v1/orders/281474976710700", "symbol=BTC-USD", ""),
        ("GET", "/ws", "", ""),
    ],
)
def test_the_page_signs_a_request_exactly_as_python_does(
    method: str, path: str, query: str, body: str
) -> None:
    secret, timestamp = "demo-secret-of-sixteen-chars", "1764000000000"
    args = json.dumps([timestamp, method, path, query, body])

    from_js = _run_js(f"signing.sign({json.dumps(secret)}, signing.signedText(...{args}))")

    assert from_js == sign(secret, signed_text(timestamp, method, path, query, body.encode()))


def test_the_page_checksums_a_book_as_the_protocol_document_defines() -> None:
    snapshot = {
        "type": "book_snapshot",
        "seq": 7,
        "bids": [["100.00", "0.5"], ["99.99", "0.1"]],
        "asks": [["100.01", "0.2"]],
        "checksum": zlib.crc32(b"100.00:0.5:100.01:0.2:99.99:0.1"),
    }
    delta = {"type": "book", "prev_seq": 7, "seq": 9, "bids": [["99.99", "0"]], "asks": [["100.02", "1.0"]]}
    delta["checksum"] = zlib.crc32(b"100.00:0.5:100.01:0.2:100.02:1.0")

    applied = _run_js(
        f"(() => {{ const copy = new book.BookCopy(); "
        f"return [copy.apply({json.dumps(snapshot)}), copy.apply({json.dumps(delta)}), copy.seq]; }})()"
    )

    assert applied == [True, True, 9]


def test_the_page_refuses_a_delta_that_does_not_follow_its_copy() -> None:
    late = {"type": "book", "prev_seq": 8, "seq": 9, "bids": [], "asks": [], "checksum": 0}

    assert _run_js(f"new book.BookCopy().apply({json.dumps(late)})") is False


def test_the_page_subtracts_and_compares_decimal_strings_without_floats() -> None:
    results = _run_js(
        '[book.subtractDecimal("65000.01", "64999.5"), book.subtractDecimal("0.1", "0.30"),'
        ' book.compareDecimal("9.99", "10.0"), book.compareDecimal("0.10", "0.1")]'
    )

    assert results == ["0.51", "-0.20", -1, 0]
