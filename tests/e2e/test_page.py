"""The 호가창 in a real browser on a whole local cluster (`exchange up`): trade through the page.

One Chromium session drives the page through every step (trade_in_the_page.cjs); the tests below
each read their part of its report. The screenshots are kept at build/test-artifacts/relay-page.png
(at the end) and relay-page-resting.png (the order resting in the ladder).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BrowserTools
from tests.integration.up_fixtures import exchange_up

SCRIPT = Path(__file__).with_name("trade_in_the_page.cjs")
BROWSER_GUARD_S = 300


@pytest.fixture(scope="module")
def page_run(
    kafka_bootstrap: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    browser_tools: BrowserTools,
) -> dict[str, Any]:
    """The browser script's report, after it traded through the page on a fresh `exchange up`."""
    screenshot = browser_tools.artifacts / "relay-page.png"
    for old in (screenshot, screenshot.with_name("relay-page-resting.png")):
        old.unlink(missing_ok=True)
    page_url = "http://127.0.0.1:{}/?symbol=BTC-USD"
    with exchange_up(kafka_bootstrap, module_topic_prefix, tmp_path_factory.mktemp("up")) as up:
        assert up.wait_all_ready()
        done = subprocess.run(
            [browser_tools.node, str(SCRIPT), page_url.format(up.relay_port), str(screenshot)],
            check=False,  # the script's own report says which step failed
            env={
                **os.environ,
                "PLAYWRIGHT_CORE": str(browser_tools.playwright_core),
                "CHROMIUM": str(browser_tools.chromium),
            },
            capture_output=True,
            text=True,
            timeout=BROWSER_GUARD_S,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_an_order_placed_in_the_page_rests_in_the_ladder_survives_a_reconnect_trades_fills_and_cancels(
    page_run: dict[str, Any], browser_tools: BrowserTools
) -> None:
    assert page_run["resting"] == "0.01000"
    assert page_run["resumed"]["channel"] == "book" and page_run["resumed"]["resume_seq"] > 0
    assert {"buy", "sell"} <= {fill.split("\t")[1] for fill in page_run["fills"]}
    assert page_run["candlesAfter"] == page_run["candlesBefore"] + 1
    assert (browser_tools.artifacts / "relay-page.png").stat().st_size > 0
    assert (browser_tools.artifacts / "relay-page-resting.png").stat().st_size > 0


def test_a_market_order_from_the_form_fills_against_a_resting_order_and_shows_the_fill(
    page_run: dict[str, Any],
) -> None:
    market = page_run["form"]["market"]

    assert (market["status"], market["filled"], market["remaining"]) == ("FILLED", "0.01000", "0.00000")
    assert "64500.00" in page_run["form"]["marketFill"]


def test_an_ioc_limit_that_cannot_fill_in_full_shows_its_remainder_cancelled(
    page_run: dict[str, Any],
) -> None:
    ioc = page_run["form"]["ioc"]

    assert ioc["status"] in ("CANCELLED", "EXPIRED")
    assert (ioc["filled"], ioc["cancelled"]) == ("0.01000", "0.01000")
    assert "remainder 0.01000 cancelled (IOC)" in ioc["text"]
    assert page_run["form"]["iocRests"] is False


def test_a_fok_that_cannot_fill_in_full_is_shown_killed_and_nothing_trades(page_run: dict[str, Any]) -> None:
    form = page_run["form"]

    assert (form["fok"]["status"], form["fok"]["filled"], form["fok"]["cancelled"]) == (
        "EXPIRED",
        "0.00000",
        "0.02000",
    )
    assert "killed, fill-or-kill could not fill in full; nothing traded" in form["fok"]["text"]
    assert form["fokAskAfter"] == "0.01000"
    assert form["fokFills"] == 0


def test_a_crossing_post_only_is_refused_with_its_reason_and_a_passive_one_rests(
    page_run: dict[str, Any],
) -> None:
    form = page_run["form"]

    assert (form["crossing"]["status"], form["crossing"]["code"]) == ("rejected", "POST_ONLY_WOULD_TAKE")
    assert "post-only would have crossed" in form["crossing"]["text"]
    assert form["passive"]["status"] == "NEW"
    assert form["passiveSize"] == "0.01000"
