"""The matcher's Prometheus metrics.

Cardinality stays bounded: labels are the partition (one per matcher), the command type (a
handful of schema names), the result (accepted/rejected/dlq) and the book side. Per-symbol
figures are not exported: with thousands of symbols they would be thousands of series per
metric; the relay's book view and the executions topic carry that detail instead.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from matcher.timing import TRANSACTION_PHASES
from runtime.metrics import counter, gauge, histogram

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class MatcherMetrics:
    """Every metric one matcher process exports, with its partition label applied."""

    def __init__(self, partition: int, registry: CollectorRegistry = REGISTRY) -> None:
        p = str(partition)
        self.commands = counter(
            "exchange_matcher_commands_total",
            "Commands processed, by type and result (accepted, rejected, dlq)",
            ["partition", "type", "result"],
            registry=registry,
        )
        self._partition = p
        self._command_children: dict[tuple[str, str], Any] = {}
        self.fills = counter(
            "exchange_matcher_fills_total", "Maker/taker matches", ["partition"], registry=registry
        ).labels(p)
        self.traded_lots = counter(
            "exchange_matcher_traded_lots_total", "Lots traded", ["partition"], registry=registry
        ).labels(p)
        self.batch_commands = histogram(
            "exchange_matcher_batch_commands",
            "Commands per transaction",
            ["partition"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        ).labels(p)
        self.transaction_seconds = histogram(
            "exchange_matcher_transaction_seconds",
            "From the first command of a batch to its commit",
            ["partition"],
            registry=registry,
        ).labels(p)
        phases = histogram(
            "exchange_matcher_transaction_phase_seconds",
            "A transaction's commit by phase: produce (queue records), send_offsets, commit",
            ["partition", "phase"],
            registry=registry,
        )
        self.transaction_phases = {phase: phases.labels(p, phase) for phase in TRANSACTION_PHASES}
        self.aborts = counter(
            "exchange_matcher_aborts_total", "Transactions aborted", ["partition"], registry=registry
        ).labels(p)
        self.input_lag = gauge(
            "exchange_matcher_input_lag_commands",
            "Commands in `orders` not yet processed (end offset - position)",
            ["partition"],
            registry=registry,
        ).labels(p)
        self.snapshot_age = gauge(
            "exchange_matcher_state_snapshot_age_seconds",
            "Seconds since the last committed state snapshot",
            ["partition"],
            registry=registry,
        ).labels(p)
        self.snapshot_bytes = gauge(
            "exchange_matcher_state_snapshot_bytes",
            "Size of the last state snapshot",
            ["partition"],
            registry=registry,
        ).labels(p)
        self.recovery_seconds = gauge(
            "exchange_matcher_recovery_seconds",
            "Duration of the last recovery (snapshot load + replay)",
            ["partition"],
            registry=registry,
        ).labels(p)
        self.replayed_commands = gauge(
            "exchange_matcher_recovery_replayed_commands",
            "Commands replayed by the last recovery",
            ["partition"],
            registry=registry,
        ).labels(p)
        self.resting_orders = gauge(
            "exchange_matcher_resting_orders", "Orders resting on the books", ["partition"], registry=registry
        ).labels(p)
        self.book_levels = gauge(
            "exchange_matcher_book_levels",
            "Price levels on the books",
            ["partition", "side"],
            registry=registry,
        )
        self.committed_offset = gauge(
            "exchange_matcher_committed_offset",
            "Next `orders` offset to process",
            ["partition"],
            registry=registry,
        ).labels(p)

    def command(self, kind: str, result: str, count: int = 1) -> None:
        child = self._command_children.get((kind, result))
        if child is None:  # looking a child up by its labels costs more than counting; keep them
            child = self._command_children[kind, result] = self.commands.labels(self._partition, kind, result)
        child.inc(count)

    def levels(self, side: str, count: int) -> None:
        self.book_levels.labels(self._partition, side).set(count)
