"""From a checked request to a command in `orders` and back: what every route shares.

:class:`Gateway` is the app's state: the settings, the live registry, the authenticator, the
sequencer and the metrics. Its :meth:`Gateway.send` stamps a command with its origin (request id,
this instance, its reply partition, the time), writes it to the symbol's partition and returns
the matcher's reply, or None when the reply did not come within the wait (the caller answers 202).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from gateway.errors import ApiError, invalid, rejected
from gateway.metrics import GatewayMetrics
from gateway.sequencer import OutcomeUnknown, Sequencer, Unavailable
from gateway.settings import GatewaySettings
from runtime.auth import Authenticator, SignedRequest
from runtime.health import Health
from runtime.keys import ApiKey, Scope
from runtime.live_symbols import LiveRegistry
from runtime.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from runtime.symbols import DomainError, Symbol

# int64 holds every 18-digit number: more digits than that cannot be a price or a quantity here.
MAX_SIGNIFICANT_DIGITS = 18
# An order id is (partition << 48) | offset (the matcher's command id).
ORDER_ID_OFFSET_BITS = 48


@dataclass
class Gateway:
    """Everything a request needs, built once per instance."""

    settings: GatewaySettings
    registry: LiveRegistry
    auth: Authenticator
    sequencer: Sequencer
    metrics: GatewayMetrics
    health: Health

    async def authorize(self, request: Request, scope: Scope) -> ApiKey:
        """The key of a signed, fresh request allowed ``scope`` (AuthError otherwise)."""
        headers = request.headers
        signed = SignedRequest(
            key_id=headers.get(KEY_HEADER),
            timestamp=headers.get(TIMESTAMP_HEADER),
            signature=headers.get(SIGNATURE_HEADER),
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            body=await request.body(),
        )
        return self.auth.check(signed, scope)

    def symbol(self, name: str, status: int = 422) -> Symbol:
        """The symbol called ``name`` (an ApiError UNKNOWN_SYMBOL with ``status`` if there is none)."""
        symbol = self.registry.get(name)
        if symbol is None:
            raise ApiError(
                status, "UNKNOWN_SYMBOL", f"no symbol {name[:40]!r}; GET /api/v1/symbols lists them"
            )
        return symbol

    def order_symbol(self, order_id: str, symbol_name: str) -> tuple[int, Symbol]:
        """The order id as a number and its symbol; 404 when the id names no partition of the symbol."""
        symbol = self.symbol(symbol_name, status=404)
        if not (order_id.isascii() and order_id.isdigit()) or len(order_id) > 19 or int(order_id) >= 1 << 63:
            raise ApiError(404, "UNKNOWN_ORDER", "no such order among this account's orders")
        number = int(order_id)
        # The symbol's partition exists, so an id naming any other partition (or none) is no order here.
        if number >> ORDER_ID_OFFSET_BITS != symbol.partition:
            raise ApiError(404, "UNKNOWN_ORDER", "no such order among this account's orders")
        return number, symbol

    def origin(self) -> dict[str, Any]:
        """A new command's origin: a fresh request id, this instance, its reply partition, now."""
        return {
            "request_id": uuid.uuid4().hex,
            "gateway_id": self.sequencer.gateway_id,
            "reply_partition": self.sequencer.reply_partition,
            "ts_ns": time.time_ns(),
        }

    def query(
        self,
        account: str,
        symbol: Symbol,
        kind: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        depth: int | None = None,
    ) -> dict[str, Any]:
        """A Query command: ORDER (by id or client id), OPEN_ORDERS or BOOK (to ``depth``)."""
        return {
            "origin": self.origin(),
            "symbol": symbol.name,
            "account": account,
            "kind": kind,
            "order_id": order_id,
            "client_order_id": client_order_id,
            "depth": depth,
        }

    async def send(self, schema: str, record: dict[str, Any], symbol: Symbol) -> dict[str, Any] | None:
        """Write the command and wait for its reply: the reply if ACCEPTED, None if it did not come.

        A REJECTED reply raises its ApiError; a command that was not written raises 503.
        """
        started = time.monotonic()
        deadline = started + self.settings.gateway_reply_wait_s
        self.metrics.pending_replies.inc()
        try:
            reply = await self.sequencer.submit(schema, record, symbol.partition, symbol.name, deadline)
        except Unavailable as exc:
            raise ApiError(503, "UNAVAILABLE", str(exc), {"Retry-After": "1"}) from None
        except OutcomeUnknown as exc:
            raise ApiError(
                504, "OUTCOME_UNKNOWN", f"{exc}; read the order by its client order id before retrying"
            ) from None
        finally:
            self.metrics.pending_replies.dec()
        if reply is None:
            return None
        self.metrics.reply_wait.observe(time.monotonic() - started)
        if reply["result"] == "REJECTED":
            raise rejected(reply["reason"])
        return reply


def price_ticks(symbol: Symbol, text: str, what: str = "price") -> int:
    """A decimal price in ticks, or a 422 naming the tick size."""
    _check_digits(text, what)
    try:
        return symbol.price_to_ticks(text)
    except DomainError as exc:
        raise invalid(exc) from None


def quantity_lots(symbol: Symbol, text: str, what: str = "quantity") -> int:
    """A decimal quantity in lots, or a 422 naming the lot size."""
    _check_digits(text, what)
    try:
        return symbol.qty_to_lots(text)
    except DomainError as exc:
        raise invalid(DomainError(exc.reason, str(exc).replace("qty", what, 1))) from None


def _check_digits(text: str, what: str) -> None:
    digits = text.lstrip("+-").replace(".", "").lstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS and all(c.isdigit() for c in digits):
        raise ApiError(
            422, "TOO_MANY_DIGITS", f"{what} has more than {MAX_SIGNIFICANT_DIGITS} significant digits"
        )
