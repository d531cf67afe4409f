"""The gateway's FastAPI app, built by :func:`create_app`; its lifespan starts and stops Kafka.

Every uvicorn worker builds its own app, hence its own instance id and reply partition: workers
are separate instances and need no coordination.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors
from gateway.commands import Gateway
from gateway.metrics import GatewayMetrics
from gateway.routes import admin, market, orders
from gateway.sequencer import Sequencer, default_instance_id
from gateway.settings import GatewaySettings
from runtime.auth import Authenticator, AuthError
from runtime.health import Health
from runtime.kafka import bootstrap_servers
from runtime.keys import load_keys
from runtime.live_symbols import LiveRegistry
from runtime.metrics import exposition
from runtime.signing import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from runtime.symbols import load_registry
from runtime.topics import TopicNames
from schemas import default_codec


def build_gateway(settings: GatewaySettings, metrics_registry: CollectorRegistry | None = None) -> Gateway:
    """The gateway's parts from its settings (Kafka clients are created, not yet started)."""
    registry = LiveRegistry(load_registry(settings.symbols_file))
    keys = load_keys(settings.gateway_keys_file, settings.gateway_keys)
    metrics = GatewayMetrics(metrics_registry or CollectorRegistry())
    health = Health()
    sequencer = Sequencer(
        bootstrap_servers(settings),
        TopicNames.with_prefix(settings.topic_prefix),
        default_codec(),
        registry,
        health,
        gateway_id=settings.gateway_instance_id or default_instance_id(),
        delivery_timeout_s=settings.gateway_delivery_timeout_s,
        on_late_reply=metrics.late_replies.inc,
        on_delivered=metrics.delivery.observe,
    )
    auth = Authenticator(
        keys, settings.gateway_recv_window_s, settings.gateway_rate_per_s, settings.gateway_rate_burst
    )
    return Gateway(settings, registry, auth, sequencer, metrics, health)


def create_app(settings: GatewaySettings, metrics_registry: CollectorRegistry | None = None) -> FastAPI:
    """The REST API of one gateway instance."""
    gateway = build_gateway(settings, metrics_registry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(gateway.sequencer.start, asyncio.get_running_loop())
        try:
            yield
        finally:
            await asyncio.to_thread(gateway.sequencer.stop)

    app = _api(lifespan)
    app.state.gateway = gateway
    _add_ops_routes(app, gateway)
    app.add_exception_handler(errors.ApiError, errors.on_api_error)
    app.add_exception_handler(AuthError, errors.on_auth_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    app.add_middleware(EdgeMiddleware, gateway=gateway)
    _allow_origins(app, settings.gateway_cors_origins)
    return app


def _allow_origins(app: FastAPI, origins: str) -> None:
    """Let pages from these origins call the API (the relay's 호가창 lives on another port).

    Off unless configured: a browser then refuses every cross-origin call. The key still signs
    each request, so CORS only decides which pages may try.
    """
    allowed = [origin.strip() for origin in origins.split(",") if origin.strip()]
    if allowed:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER],
            max_age=600,
        )


def _api(lifespan: Any = None) -> FastAPI:
    """The app with its API routes, the part the OpenAPI document describes."""
    app = FastAPI(
        title="exchange-cluster gateway",
        version="1",
        description="Place, cancel, amend and read orders; prices and quantities are decimal strings.",
        lifespan=lifespan,
    )
    app.include_router(orders.router)
    app.include_router(market.router)
    app.include_router(admin.router)
    return app


def openapi_document() -> dict[str, Any]:
    """The gateway's OpenAPI document, without starting anything."""
    return _api().openapi()


def _add_ops_routes(app: FastAPI, gateway: Gateway) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        alive, reason = gateway.health.liveness()
        return PlainTextResponse(reason + "\n", 200 if alive else 503)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        ready, reason = gateway.health.readiness()
        return PlainTextResponse(reason + "\n", 200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition(gateway.metrics.registry)
        return Response(body, media_type=content_type)


class BodyTooLarge(Exception):
    """The request body grew past the limit while being read."""


class EdgeMiddleware:
    """What every request passes: the body size limit (413) and the request metrics."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.limit = gateway.settings.gateway_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.gateway.metrics
        started = time.monotonic()
        status = [500]
        declared = _content_length(scope)
        metrics.in_flight.inc()
        try:
            if declared is not None and declared > self.limit:
                await _too_large(send, self.limit)
                status[0] = 413
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
                return message

            async def watched_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.app(scope, limited_receive, watched_send)
            except BodyTooLarge:
                status[0] = 413
                await _too_large(send, self.limit)
        finally:
            metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.requests.labels(template, scope["method"], f"{status[0] // 100}xx").observe(
                time.monotonic() - started
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"code":"BODY_TOO_LARGE","message":"the request body is over %d bytes"}' % limit
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
