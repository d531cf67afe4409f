"""`/api/v1/admin/symbols`: operators add, halt and resume symbols, as commands in the log.

Nobody edits the registry file under a running cluster: an AddSymbol goes to the new symbol's
partition, its matcher validates and lists it, and every gateway learns of it from `symbols`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from gateway.auth import ApiKey, Scope
from gateway.commands import Gateway
from gateway.errors import ApiError, invalid
from gateway.models import AdminOut, SymbolListing
from gateway.routes.orders import ERRORS, GatewayDep
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


@router.post(
    "/symbols/{symbol}/halt",
    operation_id="halt_symbol",
    response_model=AdminOut,
    responses={202: {"model": AdminOut}, **ERRORS},
)
async def halt_symbol(
    symbol: SymbolPath, _key: Operator, gateway: GatewayDep, response: Response
) -> AdminOut:
    """Stop matching a symbol: new orders and amendments are rejected, cancels still work."""
    found = gateway.symbol(symbol, status=404)
    record: dict[str, Any] = {"origin": gateway.origin(), "symbol": found.name}
    return await _admin(gateway, "HaltSymbol", record, found, response)


@router.post(
    "/symbols/{symbol}/resume",
    operation_id="resume_symbol",
    response_model=AdminOut,
    responses={202: {"model": AdminOut}, **ERRORS},
)
async def resume_symbol(
    symbol: SymbolPath, _key: Operator, gateway: GatewayDep, response: Response
) -> AdminOut:
    """Resume matching a halted symbol."""
    found = gateway.symbol(symbol, status=404)
    record: dict[str, Any] = {"origin": gateway.origin(), "symbol": found.name}
    return await _admin(gateway, "ResumeSymbol", record, found, response)


async def _admin(
    gateway: Gateway, schema: str, record: dict[str, object], symbol: Symbol, response: Response
) -> AdminOut:
    request_id = str(record["origin"]["request_id"])  # type: ignore[index]
    reply = await gateway.send(schema, dict(record), symbol)
    if reply is None:
        response.status_code = 202
    return AdminOut(
        symbol=symbol.name, status="pending" if reply is None else "accepted", request_id=request_id
    )
