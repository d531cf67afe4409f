"""Who is asking a REST request (HMAC signature), whether it is fresh, and how often it may ask.

Every service with a signed REST API (the gateway, the history service) checks requests here, so
a key, its scopes and its account mean the same everywhere. The keys themselves (their document,
scopes and accounts) are in :mod:`runtime.keys`; the signature scheme is in :mod:`runtime.signing`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.keys import ApiKey, ReplayGuard, Scope, timestamp_skew_s
from runtime.ratelimit import RateLimiter
from runtime.signing import signature_matches, signed_text


class AuthError(Exception):
    """A request a service refuses; ``status`` and ``code`` go into the error response."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a request says of itself: the three headers and what the signature covers."""

    key_id: str | None
    timestamp: str | None
    signature: str | None
    method: str
    path: str
    query: str
    body: bytes


class Authenticator:
    """Checks a request's key, signature, freshness, scope and rate; returns its key or raises AuthError."""

    def __init__(self, keys: Mapping[str, ApiKey], window_s: float, rate: float, burst: int) -> None:
        self.keys = dict(keys)
        self.window_s = window_s
        self.replays = ReplayGuard(window_s)
        self.limiter = RateLimiter(rate, burst)

    def check(self, request: SignedRequest, scope: Scope, now_s: float | None = None) -> ApiKey:
        """The key of a well-signed, fresh, first-seen request allowed ``scope`` and within its rate."""
        now = time.time() if now_s is None else now_s
        if not request.key_id or not request.timestamp or not request.signature:
            raise AuthError(401, "MISSING_SIGNATURE", "X-API-Key, X-Timestamp and X-Signature are required")
        key = self.keys.get(request.key_id)
        if key is None:
            raise AuthError(401, "UNKNOWN_KEY", "no such API key")
        self._check_fresh(request.timestamp, now)
        text = signed_text(request.timestamp, request.method, request.path, request.query, request.body)
        if not signature_matches(key.secret, request.signature, text):
            raise AuthError(401, "BAD_SIGNATURE", "the signature does not match the request")
        if not self.replays.first_time(request.signature.lower(), now):
            raise AuthError(401, "REPLAYED_REQUEST", "this signed request was already received")
        if scope not in key.scopes:
            raise AuthError(403, "MISSING_SCOPE", f"this API key lacks the '{scope}' scope")
        wait = self.limiter.admit(key.key_id, now)
        if wait > 0:
            raise AuthError(429, "RATE_LIMITED", "too many requests for this API key", math.ceil(wait))
        return key

    def _check_fresh(self, timestamp: str, now: float) -> None:
        skew_s = timestamp_skew_s(timestamp, now)
        if skew_s is None:
            raise AuthError(401, "BAD_TIMESTAMP", "X-Timestamp must be milliseconds since the Unix epoch")
        if skew_s > self.window_s:
            raise AuthError(
                401, "STALE_TIMESTAMP", f"X-Timestamp is {skew_s:.1f} s from the server's clock "
                f"(the window is {self.window_s:g} s)",
            )  # fmt: skip
