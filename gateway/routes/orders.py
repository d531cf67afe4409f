"""`/api/v1/orders`: place, cancel, amend and read orders, every one through the sequencer.

A write answers 201 (or 200) with the matcher's outcome, 4xx when the matcher rejected it, or
202 with status ``pending`` when its reply did not come within the wait: the command is in the
log by then and will be executed exactly once; its outcome is readable by client order id.
Reads are Query commands in the same log, so a client reads its own writes.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from gateway.commands import Gateway, price_ticks, quantity_lots
from gateway.errors import ApiError
from gateway.models import (
    CLIENT_ORDER_ID_PATTERN,
    AmendRequest,
    CancelAllOut,
    ErrorOut,
    NewOrderRequest,
    OrderOut,
    OrdersOut,
    order_out,
)
from runtime.keys import ApiKey, Scope
from runtime.symbols import Symbol

router = APIRouter(prefix="/api/v1", tags=["orders"])

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Malformed JSON",
        401: "Missing, unknown, stale, replayed or wrongly signed request",
        403: "The key lacks the scope",
        404: "No such order or symbol",
        409: "The order or symbol is not in a state that allows it",
        413: "Body too large",
        422: "A field is invalid (off tick, off lot, unknown field, ...) or the matcher rejected it",
        429: "Rate limit: retry after the Retry-After header's seconds",
        503: "Kafka is unreachable: nothing was written",
        504: "The broker did not acknowledge in time: read by client order id before retrying",
    }.items()
}

SymbolQuery = Annotated[str, Query(max_length=32, description="The order's symbol", examples=["BTC-USD"])]
OrderIdPath = Annotated[str, Path(max_length=20, description="The order id", examples=["281474976710661"])]
ClientIdPath = Annotated[str, Path(pattern=CLIENT_ORDER_ID_PATTERN, examples=["my-order-1"])]


async def gateway_of(request: Request) -> Gateway:
    # async: FastAPI runs a plain function dependency in a worker thread, a thread hop per request.
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


async def trader(request: Request, gateway: GatewayDep) -> ApiKey:
    return await gateway.authorize(request, Scope.TRADE)


async def reader(request: Request, gateway: GatewayDep) -> ApiKey:
    return await gateway.authorize(request, Scope.READ)


Trader = Annotated[ApiKey, Depends(trader)]
Reader = Annotated[ApiKey, Depends(reader)]

_STP = {
    "none": "NONE",
    "cancel_newest": "CANCEL_NEWEST",
    "cancel_oldest": "CANCEL_OLDEST",
    "cancel_both": "CANCEL_BOTH",
    "decrement_and_cancel": "DECREMENT_AND_CANCEL",
}


@router.post(
    "/orders",
    operation_id="place_order",
    status_code=201,
    response_model=OrderOut,
    responses={
        202: {"model": OrderOut, "description": "Written, reply not yet in: status pending"},
        **ERRORS,
    },
)
async def place_order(
    body: NewOrderRequest, key: Trader, gateway: GatewayDep, response: Response
) -> OrderOut:
    """Place an order; 201 with its outcome (fills included) once the matcher has answered."""
    symbol = gateway.symbol(body.symbol)
    record = _new_order(body, key, symbol, gateway.origin())
    request_id = record["origin"]["request_id"]
    try:
        reply = await gateway.send("NewOrder", record, symbol)
    except ApiError as error:
        gateway.metrics.orders.labels("rejected" if error.status < 500 else "unavailable").inc()
        raise
    if reply is None:
        gateway.metrics.orders.labels("pending").inc()
        response.status_code = 202
        return OrderOut(
            order_id=None,
            client_order_id=record["client_order_id"],
            symbol=symbol.name,
            status="pending",
            request_id=request_id,
        )
    [state] = reply["orders"]
    gateway.metrics.orders.labels(state["status"].lower()).inc()
    return order_out(symbol, state, reply["fills"], request_id, reply["prevented_matches"])


def _new_order(body: NewOrderRequest, key: ApiKey, symbol: Symbol, origin: dict[str, Any]) -> dict[str, Any]:
    if body.type == "limit" and body.price is None:
        raise ApiError(422, "PRICE_REQUIRED", "a limit order needs a price")
    if body.type == "market" and body.price is not None:
        raise ApiError(422, "PRICE_NOT_ALLOWED", "a market order takes no price")
    return {
        "origin": origin,
        "symbol": symbol.name,
        "account": key.account,
        "client_order_id": body.client_order_id or uuid.uuid4().hex,
        "side": body.side.upper(),
        "order_type": body.type.upper(),
        "time_in_force": body.time_in_force,
        "price": None if body.price is None else price_ticks(symbol, body.price),
        "qty": quantity_lots(symbol, body.quantity),
        "post_only": body.post_only,
        "self_trade_prevention": _STP[body.self_trade_prevention],
    }


# A command about one order answers with its state, or 202 while its reply is still to come.
ONE_ORDER: dict[str, Any] = {"response_model": OrderOut, "responses": {202: {"model": OrderOut}, **ERRORS}}
# A read answers or times out (504): it is never pending.
ONE_ORDER_READ: dict[str, Any] = {"response_model": OrderOut, "responses": ERRORS}


@router.delete(
    "/orders/by-client-id/{client_order_id}", operation_id="cancel_order_by_client_id", **ONE_ORDER
)
async def cancel_by_client_id(
    client_order_id: ClientIdPath, symbol: SymbolQuery, key: Trader, gateway: GatewayDep, response: Response
) -> OrderOut:
    """Cancel the account's open order with this client order id."""
    found = gateway.symbol(symbol, status=404)
    record = _reference(gateway, key, found, None, client_order_id)
    return await _order_command(gateway, "CancelOrder", record, found, response)


@router.delete("/orders/{order_id}", operation_id="cancel_order", **ONE_ORDER)
async def cancel_order(
    order_id: OrderIdPath, symbol: SymbolQuery, key: Trader, gateway: GatewayDep, response: Response
) -> OrderOut:
    """Cancel one open order of the account."""
    number, found = gateway.order_symbol(order_id, symbol)
    record = _reference(gateway, key, found, number, None)
    return await _order_command(gateway, "CancelOrder", record, found, response)


@router.patch("/orders/{order_id}", operation_id="amend_order", **ONE_ORDER)
async def amend_order(
    *,
    order_id: OrderIdPath,
    symbol: SymbolQuery,
    body: AmendRequest,
    key: Trader,
    gateway: GatewayDep,
    response: Response,
) -> OrderOut:
    """Change an open order's price and/or total quantity (down at the same price keeps its priority)."""
    number, found = gateway.order_symbol(order_id, symbol)
    if body.price is None and body.quantity is None:
        raise ApiError(422, "NOTHING_TO_AMEND", "give a new price, a new quantity or both")
    record = {
        **_reference(gateway, key, found, number, None),
        "new_price": None if body.price is None else price_ticks(found, body.price),
        "new_qty": None if body.quantity is None else quantity_lots(found, body.quantity),
    }
    return await _order_command(gateway, "AmendOrder", record, found, response)


@router.delete(
    "/orders",
    operation_id="cancel_all_orders",
    response_model=CancelAllOut,
    responses={202: {"model": CancelAllOut}, **ERRORS},
)
async def cancel_all(
    symbol: SymbolQuery, key: Trader, gateway: GatewayDep, response: Response
) -> CancelAllOut:
    """Cancel every open order of the account on one symbol."""
    found = gateway.symbol(symbol, status=404)
    origin = gateway.origin()
    record = {"origin": origin, "symbol": found.name, "account": key.account}
    reply = await gateway.send("CancelAll", record, found)
    status = accepted_or_pending(reply, response)
    return CancelAllOut(symbol=found.name, status=status, request_id=origin["request_id"])


def accepted_or_pending(reply: dict[str, Any] | None, response: Response) -> Literal["accepted", "pending"]:
    """A command's status for its answer; a reply still to come makes the answer a 202."""
    if reply is None:
        response.status_code = 202
        return "pending"
    return "accepted"


@router.get("/orders/by-client-id/{client_order_id}", operation_id="get_order_by_client_id", **ONE_ORDER_READ)
async def get_by_client_id(
    client_order_id: ClientIdPath, symbol: SymbolQuery, key: Reader, gateway: GatewayDep, response: Response
) -> OrderOut:
    """One order of the account by its client order id, open or done (done ones for a while)."""
    found = gateway.symbol(symbol, status=404)
    record = gateway.query(key.account, found, "ORDER", client_order_id=client_order_id)
    return await _order_command(gateway, "Query", record, found, response)


@router.get("/orders/{order_id}", operation_id="get_order", **ONE_ORDER_READ)
async def get_order(
    order_id: OrderIdPath, symbol: SymbolQuery, key: Reader, gateway: GatewayDep, response: Response
) -> OrderOut:
    """One open order of the account by its id."""
    number, found = gateway.order_symbol(order_id, symbol)
    record = gateway.query(key.account, found, "ORDER", order_id=number)
    return await _order_command(gateway, "Query", record, found, response)


@router.get("/orders", operation_id="list_open_orders", response_model=OrdersOut, responses=ERRORS)
async def open_orders(symbol: SymbolQuery, key: Reader, gateway: GatewayDep) -> OrdersOut:
    """The account's open orders on one symbol, oldest first."""
    found = gateway.symbol(symbol, status=404)
    record = gateway.query(key.account, found, "OPEN_ORDERS")
    reply = await gateway.send("Query", record, found)
    if reply is None:
        raise timed_out()
    request_id = record["origin"]["request_id"]
    orders = [order_out(found, state, [], request_id) for state in reply["orders"]]
    return OrdersOut(symbol=found.name, orders=orders)


def timed_out() -> ApiError:
    """A read whose reply did not come in time."""
    return ApiError(504, "REPLY_TIMEOUT", "the matcher did not answer in time; a read changes nothing: retry")


def _reference(
    gateway: Gateway, key: ApiKey, symbol: Symbol, order_id: int | None, client_order_id: str | None
) -> dict[str, Any]:
    return {
        "origin": gateway.origin(),
        "symbol": symbol.name,
        "account": key.account,
        "order_id": order_id,
        "client_order_id": client_order_id,
    }


async def _order_command(
    gateway: Gateway, schema: str, record: dict[str, Any], symbol: Symbol, response: Response
) -> OrderOut:
    """Send a command about one order and answer with its state (200), or 202 while pending."""
    request_id = record["origin"]["request_id"]
    reply = await gateway.send(schema, record, symbol)
    if reply is None:
        if schema == "Query":
            raise timed_out()
        response.status_code = 202
        order_id = record["order_id"]
        return OrderOut(
            order_id=None if order_id is None else str(order_id),
            client_order_id=record["client_order_id"] or "",
            symbol=symbol.name,
            status="pending",
            request_id=request_id,
        )
    if not reply["orders"]:
        raise ApiError(404, "UNKNOWN_ORDER", "no such order among this account's orders")
    return order_out(symbol, reply["orders"][0], reply["fills"], request_id, reply["prevented_matches"])
