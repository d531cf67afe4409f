"""`exchange bench KIND ...`: run one benchmark and print one JSON line.

A small dispatcher: each benchmark lives in its own module of this package and exposes
``configure(parser)`` and ``run(args) -> int``, like the `exchange` subcommands themselves.
"""

from __future__ import annotations

import argparse
import importlib

# kind -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "core": ("bench.core", "replay an orderflow.py flow through the matching core (compare with refbook.py)"),
    "book-order": ("bench.book_order", "depth-N and fill-or-kill reads of a 100k-level book, before/after"),
    "pipeline": ("bench.pipeline", "matcher vs a pass-through Kafka loop on one partition; e2e latency"),
    "recovery": ("bench.recovery", "matcher start to ready: snapshot of N resting orders + 10 % replay"),
    "snapshot-memory": ("bench.snapshot_memory", "memory a forked state snapshot of N resting orders costs"),
    "verify-scale": ("bench.verify_scale", "exchange verify on an N-command partition: seconds, peak memory"),
    "gateway": ("bench.gateway", "signed orders over REST to a running gateway vs a FastAPI hello world"),
    "relay": (
        "bench.relay",
        "N WebSocket clients on one book with orders flowing vs a bare websockets broadcast",
    ),
    "history": (
        "bench.history",
        "history ingest vs the matcher's fill rate, GET /fills p50/p99 (SQLite, PostgreSQL)",
    ),
}


def configure(parser: argparse.ArgumentParser) -> None:
    kinds = "; ".join(f"{kind}: {help_}" for kind, (_, help_) in BENCHMARKS.items())
    parser.add_argument("kind", choices=BENCHMARKS, metavar="KIND", help=kinds.replace("%", "%%"))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own arguments (KIND --help)")


def run(args: argparse.Namespace) -> int:
    # Only the chosen benchmark is imported: `bench core` never pays for (or trips on) Kafka clients.
    module_name, help_ = BENCHMARKS[args.kind]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"exchange bench {args.kind}", description=help_)
    module.configure(parser)
    return int(module.run(parser.parse_args(args.args)))
