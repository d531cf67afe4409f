"""The API key signature: HMAC-SHA256 over timestamp, method, path, query and body.

The gateway checks it, the Python client and the web page make it; both sides build the signed
text here, so they cannot drift apart. A request carries three headers:

- ``X-API-Key``: the key's id;
- ``X-Timestamp``: milliseconds since the Unix epoch when the client signed;
- ``X-Signature``: lowercase hex of HMAC-SHA256(secret, signed text), where the signed text is
  ``timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + query + "\\n" + body``: the path as sent
  (``/api/v1/orders``), the query string as sent without the ``?`` (empty when none) and the
  body's exact bytes (empty for GET and DELETE).
"""

from __future__ import annotations

import hashlib
import hmac

KEY_HEADER = "X-API-Key"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"


def signed_text(timestamp: str, method: str, path: str, query: str, body: bytes) -> bytes:
    """The bytes a request's signature covers."""
    head = f"{timestamp}\n{method.upper()}\n{path}\n{query}\n".encode()
    return head + body


def sign(secret: str, text: bytes) -> str:
    """The signature of a request's signed text, as the ``X-Signature`` header carries it."""
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def signature_matches(secret: str, signature: str, text: bytes) -> bool:
    """Whether ``signature`` is the key's signature of ``text`` (in constant time)."""
    # compare_digest refuses non-ASCII text; such a header is simply not a signature.
    return signature.isascii() and hmac.compare_digest(sign(secret, text), signature.lower())


def signed_headers(
    key_id: str, secret: str, *, timestamp_ms: int, method: str, path: str, query: str, body: bytes
) -> dict[str, str]:
    """The three headers of a signed request."""
    timestamp = str(timestamp_ms)
    return {
        KEY_HEADER: key_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, signed_text(timestamp, method, path, query, body)),
    }
