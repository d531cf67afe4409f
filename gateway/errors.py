"""Every refusal as a status, a machine-readable code and one line; never a 500 for a bad request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.auth import AuthError
from runtime.symbols import DomainError

# The matcher's reasons that do not mean "your request is malformed" (422).
_NOT_FOUND = {"UNKNOWN_ORDER", "UNKNOWN_SYMBOL"}
_CONFLICT = {
    "ORDER_NOT_OPEN",
    "SYMBOL_HALTED",
    "SYMBOL_EXISTS",
    "SYMBOL_ALREADY_HALTED",
    "SYMBOL_NOT_HALTED",
    "POST_ONLY_WOULD_TAKE",
    "TOO_MANY_OPEN_ORDERS",
}
# Another account's order must look exactly like no order at all.
_HIDDEN = {"NOT_ORDER_OWNER": "UNKNOWN_ORDER"}
_MESSAGES = {
    "UNKNOWN_ORDER": "no such order among this account's orders",
    "UNKNOWN_SYMBOL": "no such symbol",
    "TOO_MANY_OPEN_ORDERS": "the account has as many open orders as the symbol allows; cancel one first",
}


class ApiError(Exception):
    """A refusal: HTTP ``status``, ``code`` (UPPER_SNAKE) and a one-line ``message``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def rejected(reason: str | None) -> ApiError:
    """The error for a command the matcher rejected with ``reason``."""
    code = _HIDDEN.get(reason or "", reason or "REJECTED")
    status = 404 if code in _NOT_FOUND else 409 if code in _CONFLICT else 422
    message = _MESSAGES.get(code, f"the matcher rejected the command: {code}")
    return ApiError(status, code, message)


def invalid(error: DomainError) -> ApiError:
    """A value the registry refused (off tick, off lot, malformed, ...)."""
    return ApiError(422, error.reason, str(error))


def error_response(request: Request, error: ApiError) -> JSONResponse:
    """The error's JSON answer, counted by code (a flood of bad signatures shows on a dashboard)."""
    request.app.state.gateway.metrics.refused.labels(error.code).inc()
    return JSONResponse({"code": error.code, "message": error.message}, error.status, error.headers)


async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(request, exc)


async def on_auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return error_response(request, ApiError(exc.status, exc.code, str(exc), headers))


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A body or parameter that does not fit the schema: 400 for bad JSON, 422 for the rest."""
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = next(iter(exc.errors()), {})
    kind = str(first.get("type", ""))
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    if kind == "json_invalid":
        return error_response(request, ApiError(400, "MALFORMED_JSON", "the body is not valid JSON"))
    code = {
        "extra_forbidden": "UNKNOWN_FIELD",
        "missing": "MISSING_FIELD",
        "literal_error": "INVALID_VALUE",
        "string_pattern_mismatch": "INVALID_VALUE",
        "string_too_long": "TOO_LONG",
    }.get(kind, "INVALID_FIELD")
    message = f"{where}: {first.get('msg', 'invalid')}"
    return error_response(request, ApiError(422, code, message[:300]))


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, method not allowed) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    return error_response(request, ApiError(exc.status_code, code, str(exc.detail), exc.headers))
