"""`/api/v1/symbols` and `/api/v1/book/{symbol}`: what trades here and its book."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway.models import BookOut, SymbolOut, book_out, symbol_out
from gateway.routes.orders import ERRORS, GatewayDep, Reader, timed_out

router = APIRouter(prefix="/api/v1", tags=["market"])

# A book answer is one Reply record: its depth is bounded so the record is too.
MAX_BOOK_DEPTH = 500


@router.get("/symbols", operation_id="list_symbols", response_model=list[SymbolOut])
async def list_symbols(gateway: GatewayDep) -> list[SymbolOut]:
    """Every symbol with its parameters and its trading status (public, no key needed)."""
    return [symbol_out(symbol) for symbol in gateway.registry.symbols()]


@router.get("/book/{symbol}", operation_id="get_book", response_model=BookOut, responses=ERRORS)
async def get_book(
    symbol: Annotated[str, Path(max_length=32, examples=["BTC-USD"])],
    key: Reader,
    gateway: GatewayDep,
    depth: Annotated[int, Query(ge=1, le=MAX_BOOK_DEPTH, description="Levels per side")] = 20,
) -> BookOut:
    """The L2 book, best price first on each side, read in sequence with the orders before it."""
    found = gateway.symbol(symbol, status=404)
    reply = await gateway.send("Query", gateway.query(key.account, found, "BOOK", depth=depth), found)
    if reply is None or reply["book"] is None:
        raise timed_out()
    return book_out(found, reply["book"])
