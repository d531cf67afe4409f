"""When the gateway counts the broker unreachable (and refuses orders with 503) from its probes."""

from __future__ import annotations

from gateway.sequencer import BROKER_PROBE_FAILURES, broker_reachable


def test_one_slow_probe_on_a_busy_machine_does_not_make_an_outage() -> None:
    assert broker_reachable(was_up=True, failed_probes=1)


def test_the_broker_is_down_after_enough_failed_probes_in_a_row() -> None:
    assert not broker_reachable(was_up=True, failed_probes=BROKER_PROBE_FAILURES)
    assert not broker_reachable(was_up=False, failed_probes=BROKER_PROBE_FAILURES + 5)


def test_a_down_broker_stays_down_until_a_probe_is_answered() -> None:
    assert not broker_reachable(was_up=False, failed_probes=1)
    assert broker_reachable(was_up=False, failed_probes=0)
