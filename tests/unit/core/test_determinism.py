"""Determinism: the same commands at the same offsets give byte-identical events, in any process."""

from __future__ import annotations

import os
import subprocess
import sys

from matcher.core import MatchingEngine
from tests.unit.core.flows import PROJECT_ROOT, diversify, generated_flow, replay_digest, seed_digests

SEEDS = range(1, 21)
ACTIONS = 6_000


def test_twenty_orderflow_seeds_replayed_twice_give_byte_identical_event_streams() -> None:
    for seed in SEEDS:
        flow, symbols = generated_flow("mixed", ACTIONS, seed, symbols=1 + seed % 3)
        flow = diversify(flow)

        first = replay_digest(MatchingEngine(0, symbols), flow)
        second = replay_digest(MatchingEngine(0, symbols), flow)

        assert first == second, f"seed {seed}"


def test_a_replay_in_another_process_with_another_hash_seed_gives_the_same_bytes() -> None:
    here = seed_digests(SEEDS, ACTIONS)
    code = (
        "from tests.unit.core.flows import seed_digests; "
        f"print('\\n'.join(seed_digests(range({SEEDS.start}, {SEEDS.stop}), {ACTIONS})))"
    )
    # A different string hash seed changes the iteration order of any set or dict keyed by str.
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "54321",
    }

    there = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()

    assert there == here


def test_different_flows_give_different_streams() -> None:
    first, second = seed_digests([1, 2], 2_000)

    assert first != second
