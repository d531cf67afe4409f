"""The history REST API under ``/api/v1``: an account's past orders and fills, a symbol's trades and candles.

Requests are signed with the gateway's keys (:mod:`runtime.auth`); a key sees only its account's
rows. Pages are keyset pages, newest first: the cursor is the last row's sort key, so a page costs
the same however deep, and walking every page returns each row once even while new rows arrive
(they sort before the first page). Every answer says how fresh it is (``as_of``): the store's
positions in `executions`, read before the rows, so the rows hold at least what they name.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from starlette import types as asgi
from starlette.exceptions import HTTPException as StarletteHTTPException

from history.metrics import HistoryMetrics
from history.models import (
    NANOS_PER_MILLI,
    AsOf,
    CandlesOut,
    ErrorOut,
    FillsPage,
    OrdersPage,
    TradesOut,
    as_of,
    candle_out,
    fill_out,
    order_out,
    trade_out,
)
from history.projection import STATUSES
from history.store import Store
from runtime.auth import Authenticator, AuthError, SignedRequest
from runtime.health import Health
from runtime.keys import ApiKey, Scope
from runtime.live_symbols import LiveRegistry
from runtime.metrics import exposition
from runtime.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from runtime.symbols import Symbol
from runtime.topics import TopicNames

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
# Candles one answer may hold: a range of years at one minute is refused, not computed.
MAX_CANDLES: Final = 1000
# Milliseconds whose nanoseconds still fit a signed 64-bit column.
MAX_TIME_MS: Final = ((1 << 63) - 1) // NANOS_PER_MILLI
MAX_CURSOR_CHARS: Final = 200
INTERVALS_NS: Final = {"1m": 60 * 10**9, "5m": 300 * 10**9, "1h": 3600 * 10**9}


class ApiError(Exception):
    """A refusal: HTTP ``status``, ``code`` (UPPER_SNAKE) and a one-line ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class History:
    """What every request needs: the store, the registry, the keys, the topic and the metrics."""

    store: Store
    registry: LiveRegistry
    auth: Authenticator
    topics: TopicNames
    metrics: HistoryMetrics
    health: Health

    def symbol(self, name: str) -> Symbol:
        """The symbol a request names (404 UNKNOWN_SYMBOL if the registry has none)."""
        symbol = self.registry.get(name)
        if symbol is None:
            raise ApiError(404, "UNKNOWN_SYMBOL", f"no symbol {name[:40]!r}")
        return symbol

    def listed(self, name: str) -> Symbol:
        """The symbol of a stored row: one the registry does not know yet is a passing 503."""
        symbol = self.registry.get(name)
        if symbol is None:
            raise ApiError(503, "SYMBOLS_LOADING", f"symbol {name!r} of a stored row is not known here yet")
        return symbol

    def freshness(self, connection: Connection | None = None) -> AsOf:
        """How far the store is in `executions`: read before the rows, so the rows hold at least this."""
        return as_of(self.store.positions(self.topics.executions, connection))


async def history_of(request: Request) -> History:
    # async: FastAPI runs a plain function dependency in a worker thread, a thread hop per request.
    history: History = request.app.state.history
    return history


HistoryDep = Annotated[History, Depends(history_of)]


async def reader(request: Request, history: HistoryDep) -> ApiKey:
    """The key of a signed, fresh request with the read scope (a GET signs an empty body)."""
    headers = request.headers
    signed = SignedRequest(
        key_id=headers.get(KEY_HEADER),
        timestamp=headers.get(TIMESTAMP_HEADER),
        signature=headers.get(SIGNATURE_HEADER),
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        body=b"",
    )
    return history.auth.check(signed, Scope.READ)


Reader = Annotated[ApiKey, Depends(reader)]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "A malformed cursor",
        401: "Missing, unknown, stale, replayed or wrongly signed request",
        403: "The key lacks the read scope",
        404: "No such symbol",
        422: "A parameter out of range (limit over 1,000, a start after the end, too many candles)",
        429: "Rate limit",
        503: "The store is unavailable",
    }.items()
}

router = APIRouter(prefix="/api/v1", tags=["history"])

SymbolFilter = Annotated[str | None, Query(max_length=32, description="Only this symbol")]
StartMs = Annotated[
    int | None, Query(ge=0, le=MAX_TIME_MS, description="From this time (ms since the epoch), included")
]
EndMs = Annotated[int | None, Query(ge=0, le=MAX_TIME_MS, description="Until this time (ms), excluded")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page, at most 1,000")]
Cursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_CHARS, description="next_cursor of the page before")
]
Status = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED", "REJECTED"]
assert set(Status.__args__) == set(STATUSES)  # type: ignore[attr-defined]


@router.get("/orders/history", operation_id="list_order_history", response_model=OrdersPage, responses=ERRORS)
def list_order_history(
    *,
    key: Reader,
    history: HistoryDep,
    symbol: SymbolFilter = None,
    status: Annotated[Status | None, Query(description="Only orders in this state")] = None,
    start: StartMs = None,
    end: EndMs = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The account's orders with their latest state, newest first (by the time they were placed)."""
    start_ns, end_ns = _range(start, end)
    after = _decode_cursor(cursor, ("i", "i"))
    fresh = history.freshness()
    rows = history.store.order_page(
        key.account, symbol=symbol, status=status, start_ns=start_ns, end_ns=end_ns, after=after, limit=limit
    )
    following = _encode_cursor((rows[-1].created_ns, rows[-1].order_id)) if len(rows) == limit else None
    out = [order_out(history.listed(row.symbol), row) for row in rows]
    return _json(OrdersPage(orders=out, next_cursor=following, as_of=fresh))


@router.get("/fills", operation_id="list_fills", response_model=FillsPage, responses=ERRORS)
def list_fills(
    *,
    key: Reader,
    history: HistoryDep,
    symbol: SymbolFilter = None,
    order_id: Annotated[
        str | None, Query(max_length=20, pattern=r"^[0-9]+$", description="Only this order")
    ] = None,
    start: StartMs = None,
    end: EndMs = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The account's fills (its side of each trade), newest first."""
    start_ns, end_ns = _range(start, end)
    after = _decode_cursor(cursor, ("i", "s", "i", "s"))
    number = None if order_id is None else int(order_id)
    if number is not None and number >= 1 << 63:
        return _json_of({"fills": [], "next_cursor": None, "as_of": history.freshness().model_dump()})
    with history.store.reading() as connection:
        fresh = history.freshness(connection)
        rows = history.store.fill_page(
            key.account,
            symbol=symbol,
            order_id=number,
            start_ns=start_ns,
            end_ns=end_ns,
            after=after,
            limit=limit,
            connection=connection,
        )
    last = rows[-1] if len(rows) == limit else None
    following = (
        None if last is None else _encode_cursor((last.ts_ns, last.symbol, last.trade_id, last.liquidity))
    )
    out = [fill_out(history.listed(row.symbol), row) for row in rows]
    return _json_of({"fills": out, "next_cursor": following, "as_of": fresh.model_dump()})


@router.get("/trades/{symbol}", operation_id="list_trades", response_model=TradesOut, responses=ERRORS)
def list_trades(
    symbol: Annotated[str, Path(max_length=32, examples=["BTC-USD"])],
    history: HistoryDep,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """The symbol's latest trades, newest first (public, no key needed)."""
    found = history.symbol(symbol)
    fresh = history.freshness()
    rows = history.store.trades(found.name, limit)
    out = [trade_out(found, row) for row in rows]
    return _json_of({"symbol": found.name, "trades": out, "as_of": fresh.model_dump()})


@router.get("/candles/{symbol}", operation_id="list_candles", response_model=CandlesOut, responses=ERRORS)
def list_candles(
    symbol: Annotated[str, Path(max_length=32, examples=["BTC-USD"])],
    history: HistoryDep,
    interval: Annotated[Literal["1m", "5m", "1h"], Query(description="Candle length")] = "1m",
    start: StartMs = None,
    end: EndMs = None,
) -> Response:
    """The symbol's candles (open, high, low, close, volume) in [start, end), oldest first; public.

    Without ``end`` the range ends now; without ``start`` it holds the 1,000 intervals before the end.
    Intervals without trades are left out. A range of more than 1,000 intervals is refused.
    """
    found = history.symbol(symbol)
    step = INTERVALS_NS[interval]
    end_ns = time.time_ns() if end is None else end * NANOS_PER_MILLI
    start_ns = max(0, end_ns - MAX_CANDLES * step) if start is None else start * NANOS_PER_MILLI
    _range(start_ns // NANOS_PER_MILLI, end_ns // NANOS_PER_MILLI)
    if -(-(end_ns - start_ns) // step) > MAX_CANDLES:
        raise ApiError(422, "RANGE_TOO_LARGE", f"the range holds over {MAX_CANDLES} {interval} candles")
    fresh = history.freshness()
    candles = history.store.candles(found.name, step, start_ns, end_ns)
    out = [candle_out(found, c) for c in candles]
    return _json(CandlesOut(symbol=found.name, interval=interval, candles=out, as_of=fresh))


def _json(answer: BaseModel) -> Response:
    """The answer as JSON, built once: FastAPI would validate a returned model against the route's
    response model again, a second pass over every row (the routes still declare it for OpenAPI)."""
    return Response(answer.model_dump_json(), media_type="application/json")


def _json_of(answer: dict[str, Any]) -> Response:
    """An answer already in JSON values (the rows of a page as dicts, see ``history.models.fill_out``)."""
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


def _range(start_ms: int | None, end_ms: int | None) -> tuple[int | None, int | None]:
    """[start, end) in nanoseconds; a start not before the end is BAD_RANGE."""
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise ApiError(422, "BAD_RANGE", f"start {start_ms} is not before end {end_ms}")
    return (
        None if start_ms is None else start_ms * NANOS_PER_MILLI,
        None if end_ms is None else end_ms * NANOS_PER_MILLI,
    )


# --- cursors: the last row's sort key, as URL-safe base64 of a JSON list --------------------------------


def _encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None, kinds: tuple[str, ...]) -> Any:
    """The sort key in ``cursor``: one item per kind, "i" a 64-bit integer, "s" a short string."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise _bad_cursor() from None
    if not isinstance(key, list) or len(key) != len(kinds) or not all(map(_fits, key, kinds)):
        raise _bad_cursor()
    return tuple(key)


def _fits(value: object, kind: str) -> bool:
    if kind == "s":
        return isinstance(value, str) and len(value) <= 64
    return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < 1 << 63


def _bad_cursor() -> ApiError:
    return ApiError(
        400, "BAD_CURSOR", "the cursor is not one this API gave out (pass next_cursor as it came)"
    )


# --- the app ----------------------------------------------------------------------------------------


def api() -> FastAPI:
    """The app with the history routes: the part its OpenAPI document describes."""
    app = FastAPI(
        title="exchange-cluster history",
        version="1",
        description="An account's past orders and fills, a symbol's trades and candles; decimal strings.",
    )
    app.include_router(router)
    return app


def openapi_document() -> dict[str, Any]:
    """The history API's OpenAPI document, without starting anything."""
    return api().openapi()


def create_app(history: History) -> FastAPI:
    """The history API over ``history`` with its ops routes, error bodies and request metrics."""
    app = api()
    app.state.history = history
    _add_ops_routes(app, history)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(AuthError, _on_auth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(SQLAlchemyError, _on_store_error)
    app.add_middleware(RequestTimer, metrics=history.metrics)
    return app


class RequestTimer:
    """Each request's seconds by route and status class, as plain ASGI: Starlette's ``@app.middleware``
    runs the app in a task of its own and streams the answer through it, a millisecond a request."""

    def __init__(self, app: asgi.ASGIApp, metrics: HistoryMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def watched_send(message: asgi.Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, f"{status // 100}xx").observe(time.monotonic() - started)


def _add_ops_routes(app: FastAPI, history: History) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        alive, reason = history.health.liveness()
        return PlainTextResponse(reason + "\n", 200 if alive else 503)

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        ready, reason = history.health.readiness()
        return PlainTextResponse(reason + "\n", 200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = exposition(history.metrics.registry)
        return Response(body, media_type=content_type)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status, headers)


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.code, exc.message)


async def _on_auth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return _error(exc.status, exc.code, str(exc), headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """A parameter that does not fit: 422 naming it (OUT_OF_RANGE for a limit over 1,000)."""
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = next(iter(exc.errors()), {})
    kind = str(first.get("type", ""))
    where = ".".join(str(part) for part in first.get("loc", ()))
    code = {
        "less_than_equal": "OUT_OF_RANGE",
        "greater_than_equal": "OUT_OF_RANGE",
        "string_too_long": "TOO_LONG",
        "literal_error": "INVALID_VALUE",
        "string_pattern_mismatch": "INVALID_VALUE",
    }.get(kind, "INVALID_FIELD")
    return _error(422, code, f"{where}: {first.get('msg', 'invalid')}"[:300])


async def _on_store_error(_request: Request, _exc: Exception) -> JSONResponse:
    return _error(
        503, "STORE_UNAVAILABLE", "the history database does not answer; retry later", {"Retry-After": "1"}
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    return _error(exc.status_code, code, str(exc.detail))
