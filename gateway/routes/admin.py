"""`/api/v1/admin/symbols`: operators add, halt and resume symbols, as commands in the log.

Nobody edits the registry file under a running cluster: an AddSymbol goes to the new symbol's
partition, its matcher validates and lists it, and every gateway learns of it from `symbols`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from gateway.commands import Gateway
from gateway.errors import ApiError, invalid
from gateway.models import AdminOut, SymbolListing
from gateway.routes.orders import ERRORS, GatewayDep, accepted_or_pending
from runtime.keys import ApiKey, Scope
from runtime.symbols import DomainError, Symbol, parse_symbol

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


async def operator(request: Request, gateway: GatewayDep) -> ApiKey:
    return await gateway.authorize(request, Scope.ADMIN)


Operator = Annotated[ApiKey, Depends(operator)]
SymbolPath = Annotated[str, Path(max_length=32, examples=["BRK.B"])]


@router.post(
    "/symbols",
    operation_id="add_symbol",
    status_code=201,
    response_model=AdminOut,
    responses={202: {"model": AdminOut}, **ERRORS},
)
async def add_symbol(
    body: SymbolListing, _key: Operator, gateway: GatewayDep, response: Response
) -> AdminOut:
    """List a new symbol on its partition; every gateway knows it once its matcher accepted it."""
    params = body.model_dump(exclude={"symbol"})
    try:
        listed = parse_symbol(body.symbol, params, gateway.registry.partition_count)
    except DomainError as exc:
        raise invalid(exc) from None
    if gateway.registry.get(listed.name) is not None:
        raise ApiError(409, "SYMBOL_EXISTS", f"{listed.name} is already listed")
    record: dict[str, Any] = {"origin": gateway.origin(), "symbol": listed.name, "params": params}
    return await _admin(gateway, "AddSymbol", record, listed, response)


def _trading_status_route(action: str, schema: str, summary: str) -> None:
    """``POST /symbols/{symbol}/<action>``: one admin command naming only the symbol."""

    async def change_status(
        symbol: SymbolPath, _key: Operator, gateway: GatewayDep, response: Response
    ) -> AdminOut:
        found = gateway.symbol(symbol, status=404)
        record: dict[str, Any] = {"origin": gateway.origin(), "symbol": found.name}
        return await _admin(gateway, schema, record, found, response)

    router.post(
        f"/symbols/{{symbol}}/{action}",
        operation_id=f"{action}_symbol",
        summary=summary,
        response_model=AdminOut,
        responses={202: {"model": AdminOut}, **ERRORS},
    )(change_status)


_trading_status_route("halt", "HaltSymbol", "Stop matching a symbol: new orders and amendments are refused")
_trading_status_route("resume", "ResumeSymbol", "Resume matching a halted symbol")


async def _admin(
    gateway: Gateway, schema: str, record: dict[str, Any], symbol: Symbol, response: Response
) -> AdminOut:
    reply = await gateway.send(schema, record, symbol)
    status = accepted_or_pending(reply, response)
    return AdminOut(symbol=symbol.name, status=status, request_id=record["origin"]["request_id"])
