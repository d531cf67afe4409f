"""Who a WebSocket client is: the gateway's API-key HMAC scheme over the ``auth`` request.

The client signs, as it would sign ``GET /ws`` with no query and no body (runtime.signing):
``timestamp + "\\n" + "GET" + "\\n" + "/ws" + "\\n" + "" + "\\n"``. The timestamp must be within the
receive window of the relay's clock and each signature counts once, so an ``auth`` message seen
by someone else cannot be replayed later.
"""

from __future__ import annotations

from collections.abc import Mapping

from relay.protocol import ErrorCode, ProtocolError, Request
from runtime.keys import ApiKey, ReplayGuard, Scope, timestamp_skew_s
from runtime.signing import signature_matches, signed_text

AUTH_METHOD = "GET"
AUTH_PATH = "/ws"


def auth_text(timestamp: str) -> bytes:
    """The bytes an ``auth`` request's signature covers."""
    return signed_text(timestamp, AUTH_METHOD, AUTH_PATH, "", b"")


class Access:
    """Checks ``auth`` requests against the key store."""

    def __init__(self, keys: Mapping[str, ApiKey], window_s: float) -> None:
        self.keys = dict(keys)
        self.window_s = window_s
        self.replays = ReplayGuard(window_s)

    def authenticate(self, request: Request, now_s: float) -> ApiKey:
        """The key of a well-signed, fresh, first-seen ``auth`` request with the read scope."""
        key = self.keys.get(request.key or "")
        timestamp, signature = request.timestamp or "", request.signature or ""
        if key is None:
            raise self._refused("no such API key", request)
        skew = timestamp_skew_s(timestamp, now_s)
        if skew is None:
            raise self._refused("timestamp must be milliseconds since the Unix epoch", request)
        if skew > self.window_s:
            raise self._refused(f"timestamp is {skew:.1f} s from the relay's clock", request)
        if not signature_matches(key.secret, signature, auth_text(timestamp)):
            raise self._refused("the signature does not match", request)
        if not self.replays.first_time(signature.lower(), now_s):
            raise self._refused("this signature was already used", request)
        if Scope.READ not in key.scopes:
            raise self._refused("this API key lacks the 'read' scope", request)
        return key

    @staticmethod
    def _refused(why: str, request: Request) -> ProtocolError:
        return ProtocolError(ErrorCode.AUTH_FAILED, why, request.id)
