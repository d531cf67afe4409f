"""The engines that implement ``Engine``, by name: what the specification tests run over.

Typing ``ENGINES`` makes mypy check each class against ``EngineFactory`` (its constructor)
and so against ``Engine`` (what it makes): an engine whose signatures drift fails type-checking
here. ``matcher.core`` does not import this module, so the reference engine, which is for
tests, stays out of what the service imports.
"""

from __future__ import annotations

from collections.abc import Mapping

from matcher.core.engine import MatchingEngine
from matcher.core.protocol import EngineFactory
from matcher.core.reference import ReferenceEngine

ENGINES: Mapping[str, EngineFactory] = {"fast": MatchingEngine, "reference": ReferenceEngine}
