"""An orderflow.py flow as `orders` records: what a gateway would produce for it.

The flow names orders by its own ids and has no accounts; here each order gets an account
(a few, by id) and the client order id ``o<id>``, and a cancel names the order by that client
order id, exactly as a client of the REST API would. Timestamps are synthetic and increasing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from runtime.errors import UserError

ACCOUNTS = 8
BASE_TS_NS = 1_764_000_000_000_000_000
GATEWAY = "bench-gateway"


class FlowRow(NamedTuple):
    """One row of an orderflow.py CSV."""

    seq: int
    action: str  # new | cancel
    symbol: str
    order_id: int
    side: str  # buy | sell | ""
    order_type: str  # limit | market | ""
    price: int | None
    qty: int


class WireCommand(NamedTuple):
    """An `orders` record before encoding: its key (the symbol), schema name and record."""

    symbol: str
    schema: str
    record: dict[str, Any]


def read_flow(path: Path) -> Iterator[FlowRow]:
    """The rows of an orderflow.py CSV; a UserError naming the line if one is malformed."""
    try:
        with path.open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    yield FlowRow(
                        int(row["seq"]),
                        row["action"],
                        row["symbol"],
                        int(row["order_id"]),
                        row["side"],
                        row["type"],
                        int(row["price"]) if row["price"] else None,
                        int(row["qty"]) if row["qty"] else 0,
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise UserError(f"{path}:{line}: not an orderflow.py row ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot read flow {path}: {exc.strerror}") from None


def account_of(flow_order_id: int) -> str:
    return f"acct-{flow_order_id % ACCOUNTS}"


def gateway_origin(seq: int, reply_partition: int = 0, gateway: str = GATEWAY) -> dict[str, Any]:
    """The origin a gateway stamps on its ``seq``-th request (request id ``req-SEQ``)."""
    return {
        "request_id": f"req-{seq}",
        "gateway_id": gateway,
        "reply_partition": reply_partition,
        "ts_ns": BASE_TS_NS + seq * 1_000,
    }


def order_record(
    origin: dict[str, Any],
    symbol: str,
    *,
    account: str,
    client_order_id: str,
    side: str,
    qty: int,
    price: int | None,
) -> dict[str, Any]:
    """A NewOrder record as a gateway writes it: a GTC limit order, or a market IOC one (``price`` None)."""
    market = price is None
    return {
        "origin": origin,
        "symbol": symbol,
        "account": account,
        "client_order_id": client_order_id,
        "side": side,
        "order_type": "MARKET" if market else "LIMIT",
        "time_in_force": "IOC" if market else "GTC",
        "price": price,
        "qty": qty,
        "post_only": False,
        "self_trade_prevention": "NONE",
    }


def wire_command(row: FlowRow, reply_partition: int = 0, gateway: str = GATEWAY) -> WireCommand:
    """The `orders` record a gateway would produce for one flow row."""
    origin = gateway_origin(row.seq, reply_partition, gateway)
    account, client_order_id = account_of(row.order_id), f"o{row.order_id}"
    if row.action == "cancel":
        cancel: dict[str, Any] = {
            "origin": origin,
            "symbol": row.symbol,
            "account": account,
            "order_id": None,
            "client_order_id": client_order_id,
        }
        return WireCommand(row.symbol, "CancelOrder", cancel)
    price = None if row.order_type == "market" else row.price
    record = order_record(
        origin,
        row.symbol,
        account=account,
        client_order_id=client_order_id,
        side=row.side.upper(),
        qty=row.qty,
        price=price,
    )
    return WireCommand(row.symbol, "NewOrder", record)


def flow_registry_yaml(symbols: list[str], partition_count: int = 1) -> str:
    """A registry for a flow's symbols: tick and lot 1, no price band, symbols spread round robin.

    No open-order limit either: a flow's orders come from a handful of accounts (``ACCOUNTS``),
    each standing for many traders, so thousands of them rest per account.
    """
    lines = [f"partition_count: {partition_count}", "symbols:"]
    for index, symbol in enumerate(symbols):
        lines += [
            f"  {symbol}:",
            f"    partition: {index % partition_count}",
            '    tick_size: "1"',
            '    lot_size: "1"',
            '    min_qty: "1"',
            '    max_qty: "1000000000"',
            '    reference_price: "10000"',
            '    band_percent: "0"',
            "    max_open_orders: 0",
            "    status: trading",
        ]
    return "\n".join(lines) + "\n"
