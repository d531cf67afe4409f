"""The 호가창 in a real browser on a whole local cluster (`exchange up`): trade through the page.

The screenshots are kept at build/test-artifacts/relay-page.png (after the trade) and
relay-page-resting.png (the order resting in the ladder).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import BrowserTools
from tests.integration.up_fixtures import exchange_up

SCRIPT = Path(__file__).with_name("trade_in_the_page.cjs")
BROWSER_GUARD_S = 240


def test_an_order_placed_in_the_page_rests_in_the_ladder_survives_a_reconnect_trades_fills_and_cancels(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, browser_tools: BrowserTools
) -> None:
    screenshot = browser_tools.artifacts / "relay-page.png"
    resting = screenshot.with_name("relay-page-resting.png")
    for old in (screenshot, resting):
        old.unlink(missing_ok=True)
    page_url = "http://127.0.0.1:{}/?symbol=BTC-USD"
    with exchange_up(kafka_bootstrap, topic_prefix, tmp_path) as up:
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
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["resting"] == "0.01000"
    assert result["resumed"]["channel"] == "book" and result["resumed"]["resume_seq"] > 0
    assert {"buy", "sell"} <= {fill.split("\t")[1] for fill in result["fills"]}
    assert result["candlesAfter"] == result["candlesBefore"] + 1
    assert screenshot.stat().st_size > 0
    assert resting.stat().st_size > 0
