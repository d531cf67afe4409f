"""The engines the specification tests run over, and Hypothesis profiles for the core's tests.

A test that asks for ``new_venue`` runs once per engine of ``matcher.core.implementations``
(ids ``fast`` and ``reference``): one specification, two independent implementations. A test
that needs what only the fast engine has (``state_hash``, ``symbols()``, snapshots, its
constructor's checks) builds ``Venue(...)`` itself and is marked ``fast_engine_only``.

``core-ci`` (at least 2,000 examples per test) is chosen when ``CI=true``, ``core-dev`` (fewer,
for a quick local run) otherwise; ``CORE_HYPOTHESIS_PROFILE`` names one explicitly. They are
applied to the core's tests only (through ``CORE_SETTINGS``), never loaded as the session's
default, so other packages' Hypothesis tests keep their own budgets.
"""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, settings

from matcher.core.implementations import ENGINES
from tests.unit.core.venue import NewVenue, Venue

settings.register_profile(
    "core-ci",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=False,
)
settings.register_profile(
    "core-dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

CORE_PROFILE = os.environ.get(
    "CORE_HYPOTHESIS_PROFILE", "core-ci" if os.environ.get("CI", "").lower() == "true" else "core-dev"
)
CORE_SETTINGS = settings.get_profile(CORE_PROFILE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fast_engine_only: uses what only the fast engine has; runs on it alone"
    )


@pytest.fixture(params=list(ENGINES.values()), ids=list(ENGINES))
def new_venue(request: pytest.FixtureRequest) -> NewVenue:
    """Makes venues on one engine; a test that asks for this runs once per engine."""
    return functools.partial(Venue, engine=request.param)
