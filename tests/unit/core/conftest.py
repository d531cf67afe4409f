"""Hypothesis profiles for the matching core's property and model-based tests.

``core-ci`` (at least 2,000 examples per test) is chosen when ``CI=true``, ``core-dev`` (fewer,
for a quick local run) otherwise; ``CORE_HYPOTHESIS_PROFILE`` names one explicitly. They are
applied to the core's tests only (through ``CORE_SETTINGS``), never loaded as the session's
default, so other packages' Hypothesis tests keep their own budgets.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
