"""Reason codes: why a command was rejected or why an order stopped working.

The wire carries them as strings, so a new code never breaks a schema; consumers must
treat an unknown code as "some other reason". Every code the core can emit is listed here
and in ``ALL``.
"""

from __future__ import annotations

from typing import Final

# A new order, an amend or an admin command is refused; nothing changed.
UNKNOWN_SYMBOL: Final = "UNKNOWN_SYMBOL"
SYMBOL_HALTED: Final = "SYMBOL_HALTED"
SYMBOL_EXISTS: Final = "SYMBOL_EXISTS"
SYMBOL_ALREADY_HALTED: Final = "SYMBOL_ALREADY_HALTED"
SYMBOL_NOT_HALTED: Final = "SYMBOL_NOT_HALTED"
INVALID_SYMBOL_PARAMS: Final = "INVALID_SYMBOL_PARAMS"
INVALID_SIDE: Final = "INVALID_SIDE"
INVALID_ORDER_TYPE: Final = "INVALID_ORDER_TYPE"
INVALID_TIME_IN_FORCE: Final = "INVALID_TIME_IN_FORCE"
INVALID_STP_MODE: Final = "INVALID_STP_MODE"
INVALID_POST_ONLY: Final = "INVALID_POST_ONLY"
INVALID_PRICE: Final = "INVALID_PRICE"
INVALID_QUANTITY: Final = "INVALID_QUANTITY"
QTY_BELOW_MIN: Final = "QTY_BELOW_MIN"
QTY_ABOVE_MAX: Final = "QTY_ABOVE_MAX"
PRICE_OUT_OF_BAND: Final = "PRICE_OUT_OF_BAND"
POST_ONLY_WOULD_TAKE: Final = "POST_ONLY_WOULD_TAKE"
# The account already has the symbol's max_open_orders resting: a GTC limit could add one more.
TOO_MANY_OPEN_ORDERS: Final = "TOO_MANY_OPEN_ORDERS"
MISSING_ORDER_REFERENCE: Final = "MISSING_ORDER_REFERENCE"
NOTHING_TO_AMEND: Final = "NOTHING_TO_AMEND"
INVALID_DEPTH: Final = "INVALID_DEPTH"

# A cancel, amend or query names an order that cannot be acted on; nothing changed.
UNKNOWN_ORDER: Final = "UNKNOWN_ORDER"
ORDER_NOT_OPEN: Final = "ORDER_NOT_OPEN"
NOT_ORDER_OWNER: Final = "NOT_ORDER_OWNER"

# Why (part of) an order stopped working: OrderCancelled and OrderExpired carry these.
USER_REQUESTED: Final = "USER_REQUESTED"
CANCEL_ALL: Final = "CANCEL_ALL"
AMENDED_BELOW_FILLED: Final = "AMENDED_BELOW_FILLED"
SELF_TRADE_PREVENTION: Final = "SELF_TRADE_PREVENTION"
NO_LIQUIDITY: Final = "NO_LIQUIDITY"
IMMEDIATE_OR_CANCEL: Final = "IMMEDIATE_OR_CANCEL"
FOK_NOT_FILLABLE: Final = "FOK_NOT_FILLABLE"

ALL: Final = frozenset(
    {
        UNKNOWN_SYMBOL,
        SYMBOL_HALTED,
        SYMBOL_EXISTS,
        SYMBOL_ALREADY_HALTED,
        SYMBOL_NOT_HALTED,
        INVALID_SYMBOL_PARAMS,
        INVALID_SIDE,
        INVALID_ORDER_TYPE,
        INVALID_TIME_IN_FORCE,
        INVALID_STP_MODE,
        INVALID_POST_ONLY,
        INVALID_PRICE,
        INVALID_QUANTITY,
        QTY_BELOW_MIN,
        QTY_ABOVE_MAX,
        PRICE_OUT_OF_BAND,
        POST_ONLY_WOULD_TAKE,
        TOO_MANY_OPEN_ORDERS,
        MISSING_ORDER_REFERENCE,
        NOTHING_TO_AMEND,
        INVALID_DEPTH,
        UNKNOWN_ORDER,
        ORDER_NOT_OPEN,
        NOT_ORDER_OWNER,
        USER_REQUESTED,
        CANCEL_ALL,
        AMENDED_BELOW_FILLED,
        SELF_TRADE_PREVENTION,
        NO_LIQUIDITY,
        IMMEDIATE_OR_CANCEL,
        FOK_NOT_FILLABLE,
    }
)
