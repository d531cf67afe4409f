"""API keys: who they are (the key store), and the checks every signed caller passes.

The gateway signs REST requests with them, the relay the private WebSocket channel; both load
the same document, a file or an environment variable (a Kubernetes Secret mounts either)::

    keys:
      - id: demo
        secret: "a long random string"
        account: demo
        scopes: [read, trade]        # read, trade, admin

Each key belongs to one account; every order a key places is that account's, and a key sees
only its account's orders and executions. The signature scheme is in :mod:`runtime.signing`.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from runtime.errors import UserError

_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_SECRET_CHARS = 16
# Signatures remembered for replay protection: at the default limits a window holds far fewer.
MAX_REMEMBERED_SIGNATURES = 1_000_000
# Milliseconds since the epoch fit in 13 digits until the year 2286.
_MAX_TIMESTAMP_DIGITS = 16


class Scope(StrEnum):
    """What a key may do: read (queries, market data, its executions), trade (orders), admin (symbols)."""

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


def load_keys(path: Path | None, text: str, text_source: str = "EXCHANGE_GATEWAY_KEYS") -> dict[str, ApiKey]:
    """The keys of the file ``path`` and of the document ``text`` together (either may be empty)."""
    keys: dict[str, ApiKey] = {}
    sources: list[tuple[str, str]] = []
    if path is not None:
        try:
            sources.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise UserError(f"API keys file {path} cannot be read: {exc.strerror}") from None
    if text.strip():
        sources.append((text_source, text))
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


def timestamp_skew_s(timestamp: str, now_s: float) -> float | None:
    """How far a signed timestamp (milliseconds since the epoch) is from ``now_s``; None if malformed."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return None
    return abs(int(timestamp) / 1000 - now_s)


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
