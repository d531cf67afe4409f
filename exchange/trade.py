"""`exchange order|orders|book|admin`: a person's verbs on the client, against a running gateway.

The gateway is ``EXCHANGE_GATEWAY_URL`` (default ``http://127.0.0.1:8080``); the key is
``EXCHANGE_API_KEY`` and ``EXCHANGE_API_SECRET``, or else the demo key `exchange up` wrote
into the data directory. Each verb prints its answer as one JSON object.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchange.client import ClientError, ExchangeClient, environment_key, gateway_url
from runtime.errors import UserError
from runtime.settings import Settings, load_settings


def _client() -> ExchangeClient:
    key_id, secret = environment_key(Path(load_settings(Settings).data_dir))
    return ExchangeClient(gateway_url(), key_id, secret)


def _show(answer: Any) -> int:
    print(json.dumps(answer, default=lambda d: f"{d:f}" if isinstance(d, Decimal) else str(d), indent=2))
    return 0


def _call(action: Any) -> int:
    try:
        with _client() as client:
            return _show(action(client))
    except ClientError as exc:
        raise UserError(str(exc)) from None


# --- exchange order ------------------------------------------------------------------------------


def configure_order(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", required=True)
    for side in ("buy", "sell"):
        place = verbs.add_parser(side, help=f"{side} (limit with --price, else market)")
        place.add_argument("symbol")
        place.add_argument("quantity")
        place.add_argument("--price")
        tif = place.add_mutually_exclusive_group()
        tif.add_argument("--ioc", action="store_true", help="immediate or cancel")
        tif.add_argument("--fok", action="store_true", help="fill or kill")
        place.add_argument("--post-only", action="store_true")
        place.add_argument("--client-order-id")
    for verb, help_ in (("cancel", "cancel an open order"), ("show", "show an order")):
        one = verbs.add_parser(verb, help=help_)
        one.add_argument("order_id", help="the order id, or the client order id with --client-id")
        one.add_argument("--symbol", required=True)
        one.add_argument("--client-id", action="store_true", help="ORDER_ID is a client order id")
    amend = verbs.add_parser("amend", help="change an open order's price and/or quantity")
    amend.add_argument("order_id")
    amend.add_argument("--symbol", required=True)
    amend.add_argument("--price")
    amend.add_argument("--quantity")


def run_order(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb in ("buy", "sell"):
        tif = "IOC" if args.ioc else "FOK" if args.fok else "GTC" if args.price else "IOC"
        return _call(
            lambda c: c.place_order(
                args.symbol,
                verb,
                args.quantity,
                price=args.price,
                time_in_force=tif,
                post_only=args.post_only,
                client_order_id=args.client_order_id,
            )
        )
    if verb == "cancel":
        if args.client_id:
            return _call(lambda c: c.cancel_by_client_id(args.order_id, args.symbol))
        return _call(lambda c: c.cancel_order(args.order_id, args.symbol))
    if verb == "show":
        if args.client_id:
            return _call(lambda c: c.get_order_by_client_id(args.order_id, args.symbol))
        return _call(lambda c: c.get_order(args.order_id, args.symbol))
    return _call(
        lambda c: c.amend_order(args.order_id, args.symbol, price=args.price, quantity=args.quantity)
    )


# --- exchange orders / book ----------------------------------------------------------------------


def configure_orders(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbol")
    parser.add_argument("--cancel-all", action="store_true", help="cancel them all instead")


def run_orders(args: argparse.Namespace) -> int:
    if args.cancel_all:
        return _call(lambda c: c.cancel_all(args.symbol))
    return _call(lambda c: c.open_orders(args.symbol))


def configure_book(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbol", nargs="?", help="the symbol; none lists every symbol")
    parser.add_argument("--depth", type=int, default=10)


def run_book(args: argparse.Namespace) -> int:
    if args.symbol is None:
        return _call(lambda c: c.symbols())
    return _call(lambda c: c.book(args.symbol, args.depth))


# --- exchange admin ------------------------------------------------------------------------------


def configure_admin(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add-symbol", help="list a new symbol")
    add.add_argument("symbol")
    for field in ("tick-size", "lot-size", "min-qty", "max-qty", "reference-price"):
        add.add_argument(f"--{field}", required=True)
    add.add_argument("--partition", type=int, required=True)
    add.add_argument("--band-percent", default="10")
    add.add_argument("--halted", action="store_true", help="list it halted")
    for verb in ("halt", "resume"):
        verbs.add_parser(verb, help=f"{verb} a symbol").add_argument("symbol")


def run_admin(args: argparse.Namespace) -> int:
    if args.verb == "add-symbol":
        listing = {
            "symbol": args.symbol,
            "partition": args.partition,
            "tick_size": args.tick_size,
            "lot_size": args.lot_size,
            "min_qty": args.min_qty,
            "max_qty": args.max_qty,
            "reference_price": args.reference_price,
            "band_percent": args.band_percent,
            "status": "halted" if args.halted else "trading",
        }
        return _call(lambda c: c.add_symbol(listing))
    if args.verb == "halt":
        return _call(lambda c: c.halt_symbol(args.symbol))
    return _call(lambda c: c.resume_symbol(args.symbol))
