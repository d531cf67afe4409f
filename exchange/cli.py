"""`exchange SUBCOMMAND ...`: dispatch to the module that owns the subcommand.

Each subcommand lives beside the code it runs and exposes two functions:
``configure(parser)`` adds its arguments and ``run(args) -> int`` does the work (a module
holding several, named ``module:verb``, has ``configure_verb`` and ``run_verb``).
Modules are imported only when their subcommand is chosen, so `exchange bench core`
never pays for importing Kafka or FastAPI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from runtime import native
from runtime.errors import UserError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("exchange.up", "run the local cluster (broker, topics, services); Ctrl-C stops it all"),
    "kafka": ("runtime.broker", "run a local single-node Kafka broker (KRaft) until Ctrl-C"),
    "topics": ("runtime.topics", "create or describe the cluster's topics"),
    "matcher": ("matcher.service", "match one partition of `orders`, exactly once, until Ctrl-C"),
    "gateway": ("gateway.service", "serve the REST API: orders in, synchronous results out"),
    "relay": ("relay.service", "serve market data and private executions over WebSocket"),
    "history": ("history.service", "keep orders and fills from `executions` in SQL and serve their history"),
    "order": ("exchange.trade:order", "place, cancel or read an order through a gateway (API key)"),
    "orders": ("exchange.trade:orders", "list the account's open orders on a symbol"),
    "book": ("exchange.trade:book", "show a symbol's order book"),
    "demo": (
        "exchange.demo",
        "a small seeded market maker and random takers through a gateway, until Ctrl-C",
    ),
    "admin": ("exchange.trade:admin", "add, halt or resume a symbol through a gateway (admin key)"),
    "verify": ("matcher.verify", "replay a partition's log and compare every committed output"),
    "bench": ("bench.cli", "run a benchmark and print one JSON line"),
    "native": ("runtime.native", "compile the hot modules with mypyc, or show whether they load"),
    "replay-lobster": ("bench.lobster", "replay a LOBSTER folder through the matching core"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "usage: exchange SUBCOMMAND [ARGS...]\n\nsubcommands:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"exchange: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    # Process-wide policy, set before the subcommand's module imports anything compiled: serve the
    # compiled modules when they are current (runtime.native); the services started by `up` pass here too.
    native.install()
    target, help_ = SUBCOMMANDS[name]
    module_name, _, verb = target.partition(":")
    module = importlib.import_module(module_name)
    suffix = f"_{verb}" if verb else ""
    parser = argparse.ArgumentParser(prog=f"exchange {name}", description=help_)
    getattr(module, f"configure{suffix}")(parser)
    try:
        return int(getattr(module, f"run{suffix}")(parser.parse_args(rest)))
    except UserError as exc:
        print(f"exchange {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
