"""`exchange` lists its subcommands and refuses unknown ones clearly."""

import pytest

from exchange.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"  {name}" in out


def test_unknown_subcommand_exits_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2

    assert "unknown subcommand 'frobnicate'" in capsys.readouterr().err


def test_no_subcommand_is_a_usage_error() -> None:
    assert main([]) == 2
