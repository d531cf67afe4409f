"""Registry entries for unit tests: BTC-USD's and a three-symbol document."""

from __future__ import annotations

from typing import Any


def btc_params(**changes: Any) -> dict[str, Any]:
    """BTC-USD's registry entry (partition 0, tick 0.01, lot 0.00001), with ``changes`` applied."""
    return {
        "partition": 0,
        "tick_size": "0.01",
        "lot_size": "0.00001",
        "min_qty": "0.0001",
        "max_qty": "100",
        "reference_price": "65000.00",
        "band_percent": "10",
        "status": "trading",
        **changes,
    }


def registry_document() -> dict[str, Any]:
    """Four partitions; BTC-USD on 0, ETH-USD on 1 and the halted BRK.B on 3."""
    return {
        "partition_count": 4,
        "symbols": {
            "BTC-USD": btc_params(),
            "ETH-USD": btc_params(partition=1, lot_size="0.0001", min_qty="0.001", reference_price="3500.00"),
            "BRK.B": btc_params(
                partition=3,
                lot_size="1",
                min_qty="1",
                max_qty="50000",
                reference_price="460.00",
                band_percent="5",
                status="halted",
            ),
        },
    }
