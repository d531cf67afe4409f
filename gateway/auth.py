"""API keys: who is asking (HMAC signature), whether the request is fresh, and how often it may ask.

Keys come from a YAML (or JSON) document, a file or an environment variable (a Kubernetes Secret
mounts either)::

    keys:
      - id: demo
        secret: "a long random string"
        account: demo
        scopes: [read, trade]        # read, trade, admin

Each key belongs to one account; every order a key places is that account's, and a key sees
only its account's orders. The signature scheme is in :mod:`runtime.signing`.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from runtime.errors import UserError
from runtime.signing import signature_matches, signed_text

_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_SECRET_CHARS = 16
# Signatures remembered for replay protection: at the default limits a window holds far fewer.
MAX_REMEMBERED_SIGNATURES = 1_000_000


class Scope(StrEnum):
    """What a key may do: read (queries), trade (orders), admin (symbols)."""

    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key: its id, its secret, the account it acts for and its scopes."""

    key_id: str
    secret: str
    account: str
    scopes: frozenset[Scope]


class AuthError(Exception):
    """A request the gateway refuses; ``status`` and ``code`` go into the error response."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


def parse_keys(document: object, source: str) -> dict[str, ApiKey]:
    """The keys of a parsed key document by id; UserError naming ``source`` and the problem."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise UserError(f"{source}: expected a mapping with a 'keys' list")
    keys: dict[str, ApiKey] = {}
    for index, entry in enumerate(document["keys"]):
        key = _parse_key(entry, f"{source}: keys[{index}]")
        if key.key_id in keys:
            raise UserError(f"{source}: duplicate key id {key.key_id!r}")
        keys[key.key_id] = key
    return keys


def _parse_key(entry: object, where: str) -> ApiKey:
    if not isinstance(entry, Mapping) or set(entry) != {"id", "secret", "account", "scopes"}:
        raise UserError(f"{where}: expected exactly the fields id, secret, account, scopes")
    key_id, secret, account, scopes = entry["id"], entry["secret"], entry["account"], entry["scopes"]
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise UserError(f"{where}: id must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
        raise UserError(f"{where}: secret must be a string of at least {MIN_SECRET_CHARS} characters")
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise UserError(f"{where}: account must be 1-64 letters, digits, '.', '_' or '-'")
    known = {scope.value for scope in Scope}
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and s in known for s in scopes)
    ):
        raise UserError(f"{where}: scopes must be a non-empty list of {', '.join(sorted(known))}")
    return ApiKey(key_id, secret, account, frozenset(Scope(s) for s in scopes))


def load_keys(path: Path | None, text: str) -> dict[str, ApiKey]:
    """The keys of the file ``path`` and of the document ``text`` together (either may be empty)."""
    keys: dict[str, ApiKey] = {}
    sources: list[tuple[str, str]] = []
    if path is not None:
        try:
            sources.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise UserError(f"API keys file {path} cannot be read: {exc.strerror}") from None
    if text.strip():
        sources.append(("EXCHANGE_GATEWAY_KEYS", text))
    for source, content in sources:
        try:
            document = yaml.safe_load(content)
        except yaml.YAMLError:
            raise UserError(f"{source}: malformed YAML") from None
        for key_id, key in parse_keys(document, source).items():
            if key_id in keys:
                raise UserError(f"{source}: key id {key_id!r} is defined twice")
            keys[key_id] = key
    return keys


class ReplayGuard:
    """Remembers the signatures seen within the receive window: the same signature twice is a replay."""

    def __init__(self, window_s: float, capacity: int = MAX_REMEMBERED_SIGNATURES) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it may be forgotten
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        """Record ``signature``; False if it was already seen within the window."""
        with self._lock:
            seen = self._seen
            while seen:
                oldest, until = next(iter(seen.items()))
                if until > now and len(seen) < self.capacity:
                    break
                del seen[oldest]
            if signature in seen:
                return False
            # A timestamp may be up to a window in the future, so keep it two windows.
            seen[signature] = now + 2 * self.window_s
            return True


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def admit(self, key_id: str, now: float) -> float:
        """0 when the request may go on, else the seconds until it could."""
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


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
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
            raise AuthError(401, "BAD_TIMESTAMP", "X-Timestamp must be milliseconds since the Unix epoch")
        skew_s = abs(int(timestamp) / 1000 - now)
        if skew_s > self.window_s:
            raise AuthError(
                401, "STALE_TIMESTAMP", f"X-Timestamp is {skew_s:.1f} s from the gateway's clock "
                f"(the window is {self.window_s:g} s)",
            )  # fmt: skip
