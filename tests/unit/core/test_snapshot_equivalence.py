"""Snapshots: restoring at any point and going on gives exactly the outputs of the uninterrupted run."""

from __future__ import annotations

import random

from matcher.core import MatchingEngine
from tests.unit.core.flows import diversify, generated_flow

ACTIONS = 20_000
POINTS = 10


def test_snapshot_at_ten_random_points_restore_and_go_on_gives_the_uninterrupted_outputs() -> None:
    flow, symbols = generated_flow("mixed", ACTIONS, seed=7, symbols=3)
    flow = diversify(flow)
    points = set(random.Random(7).sample(range(1, ACTIONS), POINTS))
    uninterrupted = MatchingEngine(0, symbols)
    interrupted = MatchingEngine(0, symbols)
    restores = 0

    for index, (command, offset) in enumerate(flow):
        if index in points:
            restored = MatchingEngine(0)
            restored.restore(interrupted.snapshot())
            assert restored.state_hash() == uninterrupted.state_hash(), f"after {index} commands"
            restored.validate()
            interrupted = restored
            restores += 1
        assert interrupted.apply(command, offset) == uninterrupted.apply(command, offset), f"command {index}"

    assert restores == POINTS
    assert interrupted.state_hash() == uninterrupted.state_hash()
    assert interrupted.resting_count() > 0


def test_a_deep_book_survives_a_snapshot_round_trip() -> None:
    flow, symbols = generated_flow("deep", 30_000, seed=3)
    engine = MatchingEngine(0, symbols)
    for command, offset in flow:
        engine.apply(command, offset)

    restored = MatchingEngine(0)
    restored.restore(engine.snapshot())

    assert restored.state_hash() == engine.state_hash()
    assert restored.book_depth(symbols[0].symbol) == engine.book_depth(symbols[0].symbol)
    restored.validate()
