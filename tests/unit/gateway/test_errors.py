"""How a matcher's rejection reaches the client: status, code and message."""

from __future__ import annotations

import pytest

from gateway.errors import rejected


def test_another_accounts_order_is_reported_exactly_like_an_unknown_order() -> None:
    hidden, unknown = rejected("NOT_ORDER_OWNER"), rejected("UNKNOWN_ORDER")

    assert (hidden.status, hidden.code, hidden.message, hidden.headers) == (
        unknown.status,
        unknown.code,
        unknown.message,
        unknown.headers,
    )


def test_an_unknown_order_is_404() -> None:
    error = rejected("UNKNOWN_ORDER")

    assert (error.status, error.code, error.message) == (
        404,
        "UNKNOWN_ORDER",
        "no such order among this account's orders",
    )


def test_an_unknown_symbol_is_404() -> None:
    error = rejected("UNKNOWN_SYMBOL")

    assert (error.status, error.code, error.message) == (404, "UNKNOWN_SYMBOL", "no such symbol")


@pytest.mark.parametrize("reason", ["ORDER_NOT_OPEN", "SYMBOL_HALTED", "TOO_MANY_OPEN_ORDERS"])
def test_a_command_that_conflicts_with_the_current_state_is_409(reason: str) -> None:
    error = rejected(reason)

    assert (error.status, error.code) == (409, reason)


def test_a_quantity_below_the_minimum_is_422_naming_the_reason() -> None:
    error = rejected("QTY_BELOW_MIN")

    assert (error.status, error.code, error.message) == (
        422,
        "QTY_BELOW_MIN",
        "the matcher rejected the command: QTY_BELOW_MIN",
    )


def test_a_rejection_without_a_reason_is_422_rejected() -> None:
    error = rejected(None)

    assert (error.status, error.code) == (422, "REJECTED")
