"""`exchange demo`: a small seeded market on a running cluster, so the 호가창 has something to show.

A market maker quotes a few levels on both sides of a drifting mid and keeps replacing them; random
takers send market orders and crossing limit orders (IOC sometimes, GTC otherwise) against it. It
all goes through the gateway with signed requests (exchange.client), at ``--rate`` commands a
second over every trading symbol (or ``--symbol``).

**What it sends is a function of the seed and the symbols' parameters only**, never of the
answers: :class:`SymbolPlan` decides every command before it is sent, so a seeded run sends the
same commands every time (``--journal FILE`` writes them down, one JSON line each). That is also
how it keeps inside the symbol's limits whatever the market does: the maker has a fixed set of
quote slots and cancels a slot's order (by client order id) before it quotes that slot again, and
the takers cancel their oldest resting order before they may rest another, so an account never has
more orders resting than its slots, whether the earlier ones filled or not. Prices stay inside the
symbol's band, quantities between its min and max, on its tick and lot.

The maker and the takers use their own keys when there are (``EXCHANGE_DEMO_TAKER_KEY`` and
``_SECRET`` beside ``EXCHANGE_API_KEY``, or the ``demo-maker`` and ``demo-taker`` keys `exchange up`
wrote), else one key for both, sharing the symbol's open-order limit. Orders say
``self_trade_prevention: none``: with one account, the takers trade with the maker instead of
cutting its quotes again and again. Refusals (4xx) are logged and skipped; a
gateway that is away (a refused connection, 429, 503, 504) is retried with backoff until it is
back. Ctrl-C (or SIGTERM) stops it after the command in flight and cancels every order it may
still have resting.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import httpx

from exchange.client import (
    RETRIABLE_STATUSES,
    ClientError,
    ExchangeClient,
    demo_keys,
    environment_key,
    gateway_url,
    listed_symbols,
)
from runtime.errors import UserError
from runtime.logs import configure_logging
from runtime.settings import Settings, load_settings
from runtime.shutdown import Shutdown
from runtime.symbols import Symbol, SymbolStatus

log = logging.getLogger("exchange.demo")

MAKER_KEY, TAKER_KEY = "demo-maker", "demo-taker"
TAKER_RESTING = 2  # GTC taker orders that may rest at once per symbol (the oldest is cancelled first)
MAKER_SHARE = 0.6  # of the steps after the opening quotes, the maker's requotes
QUOTE_STEP_BPS = 5  # distance between two quote levels, in basis points of the reference price
DRIFT_BPS = 2  # one step of the mid's random walk
MAX_LOT_MULTIPLE = 5  # quantities are 1..5 times the symbol's min_qty (capped at its max_qty)
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.25, 5.0
REPORT_EVERY_S = 10.0

Role = Literal["maker", "taker"]
T = TypeVar("T")


@dataclass(frozen=True)
class Place:
    """An order the demo places; ``ref`` names it (its client order id is the run's tag and ``ref``)."""

    role: Role
    symbol: str
    ref: int
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"]
    quantity: str
    price: str | None
    time_in_force: Literal["GTC", "IOC"]


@dataclass(frozen=True)
class Cancel:
    """A cancel of the demo's order ``ref`` (it may have filled already: then the gateway says so)."""

    role: Role
    symbol: str
    ref: int


Command = Place | Cancel


# --- the plan (pure: the seed and the symbol decide everything) -----------------------------------


def order_budget(max_open_orders: int, levels: int, shared_account: bool) -> tuple[int, int]:
    """(maker quote slots, taker orders allowed to rest) that keep each account within the symbol's limit.

    0 means no limit. With one account for both, the two share the limit.
    """
    wanted = 2 * levels
    if max_open_orders == 0:
        return wanted, TAKER_RESTING
    taker = min(TAKER_RESTING, max_open_orders // 4 if shared_account else max_open_orders)
    maker = min(wanted, max_open_orders - taker if shared_account else max_open_orders)
    return maker, taker


class SymbolPlan:
    """One symbol's market: a mid on a random walk, the maker's quote slots, the takers' resting orders."""

    def __init__(self, symbol: Symbol, rng: random.Random, *, levels: int, shared_account: bool) -> None:
        self.symbol = symbol
        self.rng = rng
        reference = symbol.reference_price_ticks
        self.step = max(1, reference * QUOTE_STEP_BPS // 10_000)
        self.drift = max(1, reference * DRIFT_BPS // 10_000)
        self.slots, self.taker_resting = order_budget(symbol.max_open_orders, levels, shared_account)
        # Every price sent stays within the band; the mid keeps room for the farthest quote on each side.
        band = reference * symbol.band_bps // 10_000 if symbol.band_bps else reference // 2
        reach = self.step * (self.slots // 2 + 1)
        self.low, self.high = reference - band + reach, reference + band - reach
        if self.low > self.high or reference - band < 1:
            self.low = self.high = reference  # a narrow band: quote around the reference only
        self.floor, self.ceiling = max(1, reference - band), reference + band
        self.mid = reference
        self.quotes: dict[int, int] = {}  # slot -> ref of the order last placed in it
        self.resting: deque[int] = deque()  # the takers' GTC refs, oldest first
        self.next_ref = 0
        self.opened = 0  # opening quotes placed so far (one per slot, before anything else)

    def step_commands(self) -> list[Command]:
        """The next step's commands: the maker requotes one slot, or a taker sends one order."""
        if self.opened < self.slots:
            self.opened += 1
            return self._requote(self.opened - 1)
        self.mid = min(self.high, max(self.low, self.mid + self.rng.choice((-1, 0, 1)) * self.drift))
        if self.slots and self.rng.random() < MAKER_SHARE:
            return self._requote(self.rng.randrange(self.slots))
        return self._take()

    def _requote(self, slot: int) -> list[Command]:
        side: Literal["buy", "sell"] = "buy" if slot % 2 == 0 else "sell"
        distance = self.step * (slot // 2 + 1)
        price = self.mid - distance if side == "buy" else self.mid + distance
        commands: list[Command] = []
        if slot in self.quotes:
            commands.append(Cancel("maker", self.symbol.name, self.quotes[slot]))
        ref = self._ref()
        self.quotes[slot] = ref
        commands.append(self._place("maker", ref=ref, side=side, kind="limit", price_ticks=price, tif="GTC"))
        return commands

    def _take(self) -> list[Command]:
        side: Literal["buy", "sell"] = self.rng.choice(("buy", "sell"))
        kind = self.rng.choice(("market", "IOC", "GTC"))
        if kind == "market":
            return [
                self._place("taker", ref=self._ref(), side=side, kind="market", price_ticks=None, tif="IOC")
            ]
        # Through one to a few of the maker's levels: it crosses the spread whenever the maker quotes.
        reach = self.step * self.rng.randint(1, max(1, self.slots // 2))
        price = self.mid + reach if side == "buy" else self.mid - reach
        if kind == "IOC" or self.taker_resting == 0:
            return [
                self._place("taker", ref=self._ref(), side=side, kind="limit", price_ticks=price, tif="IOC")
            ]
        commands: list[Command] = []
        if len(self.resting) >= self.taker_resting:
            commands.append(Cancel("taker", self.symbol.name, self.resting.popleft()))
        ref = self._ref()
        self.resting.append(ref)
        commands.append(self._place("taker", ref=ref, side=side, kind="limit", price_ticks=price, tif="GTC"))
        return commands

    def _place(
        self,
        role: Role,
        *,
        ref: int,
        side: Literal["buy", "sell"],
        kind: Literal["limit", "market"],
        price_ticks: int | None,
        tif: Literal["GTC", "IOC"],
    ) -> Place:
        symbol = self.symbol
        lots = min(symbol.min_qty_lots * self.rng.randint(1, MAX_LOT_MULTIPLE), symbol.max_qty_lots)
        price = None
        if price_ticks is not None:
            price = symbol.ticks_to_price(min(self.ceiling, max(self.floor, price_ticks)))
        return Place(role, symbol.name, ref, side, kind, symbol.lots_to_qty(lots), price, tif)

    def _ref(self) -> int:
        self.next_ref += 1
        return self.next_ref

    def open_refs(self) -> list[tuple[Role, int]]:
        """Every order of this plan that may still rest: the maker's quotes and the takers' GTC orders."""
        makers: list[tuple[Role, int]] = [("maker", ref) for ref in self.quotes.values()]
        return makers + [("taker", ref) for ref in self.resting]


def plan_commands(plans: list[SymbolPlan]) -> Iterator[Command]:
    """Every plan's steps in turn, for ever."""
    while True:
        for plan in plans:
            yield from plan.step_commands()


# --- sending ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the gateway answered, for the periodic report line."""

    sent: int = 0
    filled: int = 0
    refused: int = 0
    pending: int = 0


class DemoTrader:
    """Sends the plan's commands through the gateway, with a client per role and a retry policy."""

    def __init__(self, clients: dict[Role, ExchangeClient], *, run_tag: str, shutdown: Shutdown) -> None:
        self.clients = clients
        self.run_tag = run_tag
        self.shutdown = shutdown
        self.tally = Tally()

    def client_order_id(self, command: Command) -> str:
        return f"{self.run_tag}-{command.symbol}-{command.ref}"

    def send(self, command: Command) -> None:
        """Send one command; a refusal is logged and skipped, an absent gateway retried until it is back."""
        client = self.clients[command.role]
        cid = self.client_order_id(command)
        if isinstance(command, Cancel):
            answer = self._until_answered(lambda: client.cancel_by_client_id(cid, command.symbol), command)
        else:
            answer = self._until_answered(
                lambda: client.place_order(
                    command.symbol,
                    command.side,
                    command.quantity,
                    price=command.price,
                    order_type=command.type,
                    time_in_force=command.time_in_force,
                    # A taker may meet its own account's quotes (one key for both): trade, do not cut.
                    self_trade_prevention="none",
                    client_order_id=cid,
                ),
                command,
            )
        self.tally.sent += 1
        if answer is not None:
            self.tally.filled += len(answer.get("fills", ()))
            self.tally.pending += answer.get("status") == "pending"

    def _until_answered(self, call: Callable[[], dict[str, Any]], command: Command) -> dict[str, Any] | None:
        """``call()``'s answer; None when the gateway refused it; retried while the gateway is away.

        A retry is safe: an order carries its client order id (a second copy is answered with the
        first one's outcome) and a cancel of an order no longer open is only refused.
        """
        pause = BACKOFF_FIRST_S
        while True:
            try:
                return call()
            except ClientError as exc:
                if exc.status not in RETRIABLE_STATUSES:
                    self.tally.refused += 1
                    # Expected now and then (a cancel of a quote that filled): a debug line, not a warning.
                    log.debug("refused", extra={"command": asdict(command), "error": str(exc)})
                    return None
                problem = str(exc)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning(
                "gateway unavailable; retrying",
                extra={"symbol": command.symbol, "problem": problem, "retry_in_s": pause},
            )
            if self.shutdown.wait(pause):
                # Stopping: the command may be lost, but stop_all's cancels still run for its ref.
                return None
            pause = min(pause * 2, BACKOFF_MAX_S)

    def cancel_all_resting(self, plans: list[SymbolPlan]) -> int:
        """Cancel every order the plans may still have resting (by client order id); how many were open."""
        cancelled = 0
        for plan in plans:
            for role, ref in plan.open_refs():
                cid = self.client_order_id(Cancel(role, plan.symbol.name, ref))
                try:
                    self.clients[role].cancel_by_client_id(cid, plan.symbol.name)
                    cancelled += 1
                except ClientError as exc:
                    if exc.status in RETRIABLE_STATUSES:
                        log.warning("could not cancel", extra={"client_order_id": cid, "error": str(exc)})
                except httpx.HTTPError as exc:
                    log.warning("could not cancel", extra={"client_order_id": cid, "error": str(exc)})
        return cancelled


# --- keys, symbols, the command --------------------------------------------------------------------


def demo_clients(url: str, data_dir: Path) -> tuple[dict[Role, ExchangeClient], bool]:
    """A client per role, and whether both roles share one key (and so one account).

    The maker is ``EXCHANGE_API_KEY`` with the takers on ``EXCHANGE_DEMO_TAKER_KEY`` when set;
    else the data directory's ``demo-maker`` and ``demo-taker`` keys; else one key for both.
    """
    keys = demo_keys(data_dir)
    taker_id, taker_secret = (
        os.environ.get("EXCHANGE_DEMO_TAKER_KEY"),
        os.environ.get("EXCHANGE_DEMO_TAKER_SECRET"),
    )
    if os.environ.get("EXCHANGE_API_KEY"):
        maker = environment_key(data_dir)
        taker = (taker_id, taker_secret) if taker_id and taker_secret else maker
    elif MAKER_KEY in keys and TAKER_KEY in keys:
        maker, taker = (MAKER_KEY, keys[MAKER_KEY]), (TAKER_KEY, keys[TAKER_KEY])
    else:
        maker = taker = environment_key(data_dir)
    # One retry inside the client; the demo's own loop retries for as long as the gateway is away.
    clients: dict[Role, ExchangeClient] = {
        "maker": ExchangeClient(url, *maker, retries=1),
        "taker": ExchangeClient(url, *taker, retries=1),
    }
    return clients, maker[0] == taker[0]


def trading_symbols(url: str, chosen: list[str], shutdown: Shutdown) -> list[Symbol]:
    """The chosen symbols (every trading one when none is chosen), waiting while the gateway is away."""
    pause = BACKOFF_FIRST_S
    while True:
        try:
            listed = listed_symbols(url)
            break
        except httpx.HTTPError as exc:
            log.warning(
                "gateway unavailable; retrying", extra={"url": url, "problem": str(exc), "retry_in_s": pause}
            )
            if shutdown.wait(pause):
                raise UserError(f"stopped before the gateway at {url} answered") from None
            pause = min(pause * 2, BACKOFF_MAX_S)
    trading = {s.name: s for s in listed if s.status is SymbolStatus.TRADING}
    missing = [name for name in chosen if name not in trading]
    if missing:
        raise UserError(f"no trading symbol {', '.join(missing)} at {url} (trading: {', '.join(trading)})")
    symbols = [trading[name] for name in chosen] if chosen else list(trading.values())
    if not symbols:
        raise UserError(f"the gateway at {url} has no trading symbol")
    return symbols


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def levels_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 50:
        raise argparse.ArgumentTypeError(f"{text}: between 1 and 50 levels")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help="the gateway (default: EXCHANGE_GATEWAY_URL, else the local one)"
    )
    parser.add_argument(
        "--symbol", action="append", default=[], help="trade this symbol (repeat; default: all)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="send the same commands as any run with this seed"
    )
    parser.add_argument(
        "--rate", type=positive_float, default=5.0, help="commands per second (default: %(default)s)"
    )
    parser.add_argument(
        "--levels", type=levels_count, default=5, help="maker quote levels per side (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=None, help="stop after so long (default: Ctrl-C)"
    )
    parser.add_argument(
        "--journal", type=Path, default=None, help="write every command sent here, one JSON line each"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format)
    shutdown = Shutdown().install()
    url = (args.url or gateway_url()).rstrip("/")
    clients, shared = demo_clients(url, Path(settings.data_dir))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    plans = [
        SymbolPlan(symbol, rng, levels=args.levels, shared_account=shared)
        for symbol in trading_symbols(url, args.symbol, shutdown)
    ]
    # Client order ids differ between runs (the gateway would answer a repeated one with its first
    # outcome); the commands themselves are the seed's.
    trader = DemoTrader(clients, run_tag=f"demo{uuid.uuid4().hex[:10]}", shutdown=shutdown)
    log.info(
        "demo market",
        extra={"url": url, "seed": seed, "symbols": [p.symbol.name for p in plans], "one_account": shared},
    )
    journal = args.journal.open("w", encoding="utf-8") if args.journal else None
    try:
        trade_until_stopped(trader, plans, args.rate, args.seconds, journal)
    finally:
        if journal is not None:
            journal.close()
        cancelled = trader.cancel_all_resting(plans)
        log.info(
            "stopped",
            extra={"signal": shutdown.signal_name, "cancels_sent": cancelled, **asdict(trader.tally)},
        )
        for client in clients.values():
            client.close()
    return 0


def trade_until_stopped(
    trader: DemoTrader, plans: list[SymbolPlan], rate: float, seconds: float | None, journal: IO[str] | None
) -> None:
    """Send the plans' commands at ``rate`` a second until Ctrl-C (or ``seconds``)."""
    interval = 1.0 / rate
    started = next_due = next_report = time.monotonic()
    for command in plan_commands(plans):
        if trader.shutdown.requested or (seconds is not None and time.monotonic() - started >= seconds):
            return
        trader.send(command)
        if journal is not None:
            journal.write(json.dumps(asdict(command)) + "\n")
            journal.flush()
        now = time.monotonic()
        if now >= next_report:
            log.info("demo", extra=asdict(trader.tally))
            next_report = now + REPORT_EVERY_S
        next_due = max(next_due + interval, now)
        if trader.shutdown.wait(next_due - now):
            return
