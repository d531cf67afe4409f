"""`exchange gateway`: the REST API under uvicorn (uvloop and httptools where installed)."""

from __future__ import annotations

import argparse
import importlib.util

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from runtime.errors import UserError
from runtime.keys import load_keys
from runtime.logs import configure_logging
from runtime.settings import load_settings
from runtime.symbols import load_registry


def app_from_env() -> FastAPI:
    """The app of one worker, from the EXCHANGE_* environment (uvicorn calls this in each worker)."""
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def _fastest(module: str, fallback: str, name: str) -> str:
    return name if importlib.util.find_spec(module) is not None else fallback


def configure(parser: argparse.ArgumentParser) -> None:
    """`exchange gateway` takes its configuration from EXCHANGE_GATEWAY_* variables."""


def run(args: argparse.Namespace) -> int:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, settings.log_format)
    if not settings.gateway_keys_file and not settings.gateway_keys:
        raise UserError("no API keys: set EXCHANGE_GATEWAY_KEYS_FILE or EXCHANGE_GATEWAY_KEYS")
    load_keys(settings.gateway_keys_file, settings.gateway_keys)  # fail here, with one line, if wrong
    load_registry(settings.symbols_file)
    uvicorn.run(
        "gateway.service:app_from_env",
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers,
        loop=_fastest("uvloop", "asyncio", "uvloop"),
        http=_fastest("httptools", "h11", "httptools"),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0
