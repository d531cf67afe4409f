"""A small typed client of the gateway's REST API: signs every request, retries safely, speaks Decimal.

    client = ExchangeClient("http://127.0.0.1:8080", "demo", "the demo secret")
    order = client.place_order("BTC-USD", "buy", "0.5", price="65000")
    print(order["status"], order["filled"], order["average_price"])

Placing an order always carries a client order id (made here when not given), so a retry after
a lost connection, a 503 or a 504 sends the same order again and the matcher answers it with the
first one's outcome: an order is never doubled by a retry. Prices and quantities go out as
decimal strings and come back as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import yaml

from runtime.errors import UserError
from runtime.signing import signed_headers
from runtime.symbols import MAX_PARTITIONS, DomainError, Symbol, parse_symbol

API = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8080"
# Statuses after which the request may be sent again: nothing was written, or it is idempotent.
RETRIABLE_STATUSES = frozenset({429, 503, 504})
DECIMAL_FIELDS = frozenset({"price", "quantity", "filled", "remaining", "average_price"})


class ClientError(Exception):
    """The gateway refused a request: ``status``, ``code`` and its one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


Number = Decimal | str | int


class ExchangeClient:
    """One API key's view of a gateway."""

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret: str,
        *,
        timeout_s: float = 15.0,
        retries: int = 3,
        http: httpx.Client | None = None,
    ) -> None:
        self.key_id = key_id
        self.secret = secret
        self.retries = retries
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- orders ----------------------------------------------------------------------------------

    def place_order(
        self,
        symbol: str,
        side: str,
        quantity: Number,
        *,
        price: Number | None = None,
        order_type: str | None = None,
        time_in_force: str = "GTC",
        post_only: bool = False,
        self_trade_prevention: str = "none",
        client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """Place an order (limit when priced, else market) and return its outcome (or ``pending``)."""
        body = {
            "symbol": symbol,
            "side": side,
            "type": order_type or ("limit" if price is not None else "market"),
            "quantity": _decimal_text(quantity),
            "time_in_force": time_in_force,
            "post_only": post_only,
            "self_trade_prevention": self_trade_prevention,
            "client_order_id": client_order_id or uuid.uuid4().hex,
        }
        if price is not None:
            body["price"] = _decimal_text(price)
        return self._object("POST", "/orders", body=body)

    def cancel_order(self, order_id: str | int, symbol: str) -> dict[str, Any]:
        return self._object("DELETE", f"/orders/{order_id}", {"symbol": symbol})

    def cancel_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        return self._object("DELETE", f"/orders/by-client-id/{client_order_id}", {"symbol": symbol})

    def cancel_all(self, symbol: str) -> dict[str, Any]:
        return self._object("DELETE", "/orders", {"symbol": symbol})

    def amend_order(
        self, order_id: str | int, symbol: str, *, price: Number | None = None, quantity: Number | None = None
    ) -> dict[str, Any]:
        body = {
            key: _decimal_text(value)
            for key, value in (("price", price), ("quantity", quantity))
            if value is not None
        }
        return self._object("PATCH", f"/orders/{order_id}", {"symbol": symbol}, body=body)

    def get_order(self, order_id: str | int, symbol: str) -> dict[str, Any]:
        return self._object("GET", f"/orders/{order_id}", {"symbol": symbol})

    def get_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        return self._object("GET", f"/orders/by-client-id/{client_order_id}", {"symbol": symbol})

    def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.request("GET", "/orders", {"symbol": symbol})["orders"]
        return orders

    # --- market and admin ------------------------------------------------------------------------

    def book(self, symbol: str, depth: int = 20) -> dict[str, Any]:
        return self._object("GET", f"/book/{symbol}", {"depth": depth})

    def symbols(self) -> list[dict[str, Any]]:
        symbols: list[dict[str, Any]] = self.request("GET", "/symbols")
        return symbols

    def add_symbol(self, listing: Mapping[str, Any]) -> dict[str, Any]:
        return self._object("POST", "/admin/symbols", body=dict(listing))

    def halt_symbol(self, symbol: str) -> dict[str, Any]:
        return self._object("POST", f"/admin/symbols/{symbol}/halt")

    def resume_symbol(self, symbol: str) -> dict[str, Any]:
        return self._object("POST", f"/admin/symbols/{symbol}/resume")

    # --- the wire ---

    def _object(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *, body: Any = None
    ) -> dict[str, Any]:
        answer = self.request(method, path, params, body=body)
        if not isinstance(answer, dict):
            raise ClientError(
                200, "UNEXPECTED_ANSWER", f"expected a JSON object, got {type(answer).__name__}"
            )
        return answer

    # --- the wire (any answer) -----------------------------------------------------------------

    def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, *, body: Any = None
    ) -> Any:
        """Send a signed request, retrying what may be retried; the JSON answer, decimals as Decimal."""
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        query = urlencode(params or {})
        full_path = API + path
        for attempt in range(self.retries + 1):
            headers = signed_headers(
                self.key_id,
                self.secret,
                timestamp_ms=time.time_ns() // 1_000_000,
                method=method,
                path=full_path,
                query=query,
                body=content,
            )
            if content:
                headers["Content-Type"] = "application/json"
            url = full_path + (f"?{query}" if query else "")
            try:
                response = self.http.request(method, url, content=content, headers=headers)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code in RETRIABLE_STATUSES and attempt < self.retries:
                time.sleep(_retry_after(response, attempt))
                continue
            return _answer(response)
        raise AssertionError("unreachable")


def _answer(response: httpx.Response) -> Any:
    try:
        data = response.json(parse_float=Decimal)
    except ValueError:
        raise ClientError(response.status_code, "NOT_JSON", response.text[:200]) from None
    if response.status_code >= 400:
        if not isinstance(data, dict):  # not our gateway's answer (a proxy's, say)
            raise ClientError(response.status_code, "ERROR", str(data)[:200])
        raise ClientError(response.status_code, data.get("code", "ERROR"), data.get("message", ""))
    return _with_decimals(data)


def _with_decimals(value: Any) -> Any:
    if isinstance(value, list):
        return [_with_decimals(item) for item in value]
    if isinstance(value, dict):
        return {
            key: Decimal(item) if key in DECIMAL_FIELDS and isinstance(item, str) else _with_decimals(item)
            for key, item in value.items()
        }
    return value


def _retry_after(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After", "")
    # Never 0: a retry signed in the same millisecond would repeat the signature (a replay).
    return max(float(header), 0.01) if header.isascii() and header.isdigit() else 0.2 * (attempt + 1)


def _decimal_text(value: Number) -> str:
    if isinstance(value, float):
        raise TypeError("prices and quantities are exact: pass a Decimal or a string, not a float")
    return f"{value:f}" if isinstance(value, Decimal) else str(value)


DEMO_KEYS_FILE = "demo-keys.yaml"


def demo_keys(data_dir: Path) -> dict[str, str]:
    """Every key of the local cluster's demo key file that `exchange up` wrote (id -> secret), in order."""
    path = data_dir / DEMO_KEYS_FILE
    if not path.exists():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(key["id"]): str(key["secret"]) for key in document["keys"]}


def demo_key(data_dir: Path) -> tuple[str, str] | None:
    """The local cluster's demo key (id, secret) that `exchange up` wrote, if any."""
    return next(iter(demo_keys(data_dir).items()), None)


def environment_key(data_dir: Path) -> tuple[str, str]:
    """``EXCHANGE_API_KEY``/``_SECRET``, else the demo key `exchange up` wrote into ``data_dir``."""
    key_id, secret = os.environ.get("EXCHANGE_API_KEY"), os.environ.get("EXCHANGE_API_SECRET")
    if key_id and secret:
        return key_id, secret
    found = demo_key(data_dir)
    if found is None:
        raise UserError("no API key: set EXCHANGE_API_KEY and EXCHANGE_API_SECRET, or run `exchange up`")
    return found


def gateway_url() -> str:
    """``EXCHANGE_GATEWAY_URL``, else the local cluster's gateway."""
    return os.environ.get("EXCHANGE_GATEWAY_URL", DEFAULT_URL).rstrip("/")


def listed_symbols(url: str) -> list[Symbol]:
    """Every symbol of the gateway's public ``/api/v1/symbols``, parsed as the registry parses its file."""
    listed = httpx.get(f"{url}{API}/symbols", timeout=5.0).raise_for_status().json()
    symbols = []
    for entry in listed:
        params = {key: value for key, value in entry.items() if key != "symbol"}
        try:
            # The registry's own parsing: its partition count is the gateway's business, not ours.
            symbols.append(parse_symbol(entry["symbol"], params, MAX_PARTITIONS))
        except DomainError as exc:
            raise UserError(f"the gateway's symbol {entry['symbol']!r}: {exc}") from None
    return symbols
