"""The symbol registry: each symbol's partition, tick and lot sizes, quantity limits, price band and status.

Every component loads the same YAML file (``symbols.yaml`` beside this module by default)::

    partition_count: 4
    symbols:
      BTC-USD:
        partition: 0
        tick_size: "0.01"         # decimal strings, quoted: YAML would read 0.01 as an inexact float
        lot_size: "0.00001"
        min_qty: "0.00001"        # multiples of lot_size
        max_qty: "100"
        reference_price: "65000.00"   # a multiple of tick_size
        band_percent: "10"        # orders priced over 10% from the reference are rejected ("0": no band)
        status: trading           # or halted
        max_open_orders: 200      # optional (200): GTC limits an account may have resting (0: no limit)

Inside the cluster prices are integer ticks and quantities integer lots. The conversions here
between decimal strings (what REST speaks) and ticks/lots are exact: a value off the tick or
lot grid is refused with a :class:`DomainError`, never rounded.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from enum import StrEnum
from typing import Any

import yaml

from runtime.errors import UserError

# Order ids are (partition << 48) | orders offset in a signed 64-bit long: 15 bits of partition.
MAX_PARTITIONS = 1 << 15
# Ticks and lots travel as Avro longs.
MAX_UNITS = (1 << 63) - 1
# Long enough for any real price or quantity; short enough that no input makes arithmetic slow.
MAX_DECIMAL_CHARS = 40
BASIS_POINT = Decimal("0.01")  # in percent
MAX_BAND_BPS = 10_000
# Orders one account may have resting on one symbol when the entry does not say: Binance's
# MAX_NUM_ORDERS. A venue open to strangers needs a bound, or one account can fill the book (and
# the matcher's memory) with orders that cost nothing to place; 0 lifts it, for a private venue.
DEFAULT_MAX_OPEN_ORDERS = 200
# The highest limit an entry may set: a cancel-all of that many orders (two events each) stays far
# below the events one command may number (matcher.wire.MAX_EVENTS_PER_COMMAND, 2**20).
MAX_OPEN_ORDERS = 100_000

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_EXPONENT_NOTATION = re.compile(r"[-+]?[0-9.]+[eE][-+]?[0-9]+")
_SYMBOL_NAME = re.compile(r"[A-Z0-9]+(?:[._-][A-Z0-9]+)*")
_MAX_SYMBOL_CHARS = 32
# Enough digits for any quotient of two MAX_DECIMAL_CHARS numbers, and every rounding trapped:
# with this context an operation is either exact or an error.
_EXACT = Context(prec=4 * MAX_DECIMAL_CHARS, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
# Extra decimals an average price keeps beyond the tick size's (an average is a ratio, not a tick).
AVERAGE_PRICE_EXTRA_PLACES = 8
# Digits for any sum of int64 prices times quantities at any tick, so rounding never overflows.
_WIDE = Context(prec=120)


class DomainError(ValueError):
    """A value the exchange refuses; ``reason`` is an UPPER_SNAKE code, the message one line.

    Conversion reasons: MALFORMED_DECIMAL, NOT_POSITIVE, OFF_TICK, OFF_LOT, OUT_OF_RANGE; a symbol's
    parameters: INVALID_SYMBOL; the registry as a whole: INVALID_REGISTRY. The gateway answers with a 422.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SymbolStatus(StrEnum):
    """Whether a symbol matches orders."""

    TRADING = "trading"
    HALTED = "halted"


# --- exact conversions ---------------------------------------------------------------------------


def parse_positive_decimal(text: object, what: str) -> Decimal:
    """``text`` as a Decimal if it is a plain, positive decimal string such as ``"12.50"``."""
    if not isinstance(text, str):
        raise DomainError(
            "MALFORMED_DECIMAL",
            f"{what} must be a decimal string such as '12.5', got {text!r} ({type(text).__name__})",
        )
    if len(text) > MAX_DECIMAL_CHARS:
        raise DomainError("MALFORMED_DECIMAL", f"{what} is longer than {MAX_DECIMAL_CHARS} characters")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise DomainError("MALFORMED_DECIMAL", f"{what} {text!r} {_what_is_wrong(text)}")
    value = Decimal(text)
    if value <= 0:
        raise DomainError("NOT_POSITIVE", f"{what} must be positive, got {text!r}")
    return value


def _what_is_wrong(text: str) -> str:
    if text.strip().lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
        return "is not a finite number"
    if _EXPONENT_NOTATION.fullmatch(text):
        return "has an exponent; write the number out (0.001, not 1e-3)"
    return "is not a plain decimal number such as '12.5'"


def _to_units(text: object, step: Decimal, what: str, step_name: str, off_step_reason: str) -> int:
    value = parse_positive_decimal(text, what)
    units, rest = _EXACT.divmod(value, step)
    if rest:
        raise DomainError(off_step_reason, f"{what} {text} is not a multiple of the {step_name} {step:f}")
    if units > MAX_UNITS:
        raise DomainError("OUT_OF_RANGE", f"{what} {text} is too large for the {step_name} {step:f}")
    return int(units)


def _to_decimal(units: int, step: Decimal) -> str:
    if not isinstance(units, int) or isinstance(units, bool):
        raise TypeError(f"expected an int count of ticks or lots, got {units!r}")
    # Integer arithmetic: every page of history converts two numbers a row, and Decimal's
    # multiply and quantize cost several times this.
    multiplier, places = _step_scale(step)
    value = units * multiplier
    if not places:
        return str(value)
    whole, fraction = divmod(abs(value), 10**places)
    return f"{'-' if value < 0 else ''}{whole}.{fraction:0{places}d}"


@functools.lru_cache(maxsize=1024)
def _step_scale(step: Decimal) -> tuple[int, int]:
    """``step`` as an integer over a power of ten: (multiplier, places), step = multiplier / 10**places."""
    _, digits, exponent = step.normalize().as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"a step must be a finite number, got {step!r}")
    coefficient = int("".join(map(str, digits)))
    return (coefficient * 10**exponent, 0) if exponent >= 0 else (coefficient, -exponent)


def price_to_ticks(text: object, tick_size: Decimal) -> int:
    """A decimal price string as a whole number of ticks; off-tick is OFF_TICK, never rounded."""
    return _to_units(text, tick_size, "price", "tick size", "OFF_TICK")


def qty_to_lots(text: object, lot_size: Decimal) -> int:
    """A decimal quantity string as a whole number of lots; off-lot is OFF_LOT, never rounded."""
    return _to_units(text, lot_size, "qty", "lot size", "OFF_LOT")


def ticks_to_price(ticks: int, tick_size: Decimal) -> str:
    """The canonical decimal string of a price: as many decimals as the tick size has."""
    return _to_decimal(ticks, tick_size)


def lots_to_qty(lots: int, lot_size: Decimal) -> str:
    """The canonical decimal string of a quantity: as many decimals as the lot size has."""
    return _to_decimal(lots, lot_size)


# --- one symbol ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Symbol:
    """One tradable symbol; the integer fields are what the matching core works with."""

    name: str
    partition: int
    tick_size: Decimal
    lot_size: Decimal
    min_qty_lots: int
    max_qty_lots: int
    reference_price_ticks: int
    band_bps: int  # orders may be priced at most this many basis points away from the reference price
    status: SymbolStatus
    max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS  # per account resting on this symbol; 0 = no limit

    def price_to_ticks(self, text: object) -> int:
        """A decimal price string of this symbol in ticks (DomainError OFF_TICK, ... if not exact)."""
        return price_to_ticks(text, self.tick_size)

    def qty_to_lots(self, text: object) -> int:
        """A decimal quantity string of this symbol in lots (DomainError OFF_LOT, ... if not exact)."""
        return qty_to_lots(text, self.lot_size)

    def ticks_to_price(self, ticks: int) -> str:
        """A price of this symbol as its canonical decimal string."""
        return ticks_to_price(ticks, self.tick_size)

    def lots_to_qty(self, lots: int) -> str:
        """A quantity of this symbol as its canonical decimal string."""
        return lots_to_qty(lots, self.lot_size)

    def average_price(self, notional: int, lots: int) -> str | None:
        """The price of ``notional`` (the sum of ticks x lots of some fills) over ``lots``; None for no lots.

        Rounded half-even to the tick's places plus a few; trailing zeros past the tick's places dropped.
        """
        if not lots:
            return None
        tick_places = max(0, -int(self.tick_size.normalize().as_tuple().exponent))
        places = Decimal(1).scaleb(-(tick_places + AVERAGE_PRICE_EXTRA_PLACES))
        exact = Decimal(notional) * self.tick_size
        text = f"{_WIDE.divide(exact, Decimal(lots)).quantize(places, context=_WIDE):f}"
        # Trailing zeros beyond the tick's places say nothing: 65000.00, not 65000.0000000000.
        whole, _, decimals = text.partition(".")
        decimals = decimals.rstrip("0").ljust(tick_places, "0")
        return f"{whole}.{decimals}" if decimals else whole

    def to_params(self) -> dict[str, Any]:
        """The symbol's entry as in the registry file (and an AddSymbol command's ``params``)."""
        return {
            "partition": self.partition,
            "tick_size": f"{self.tick_size:f}",
            "lot_size": f"{self.lot_size:f}",
            "min_qty": self.lots_to_qty(self.min_qty_lots),
            "max_qty": self.lots_to_qty(self.max_qty_lots),
            "reference_price": self.ticks_to_price(self.reference_price_ticks),
            "band_percent": _to_decimal(self.band_bps, BASIS_POINT) if self.band_bps else NO_BAND,
            "status": self.status.value,
            "max_open_orders": self.max_open_orders,
        }


NO_BAND = "0"

_FIELDS = (
    "partition",
    "tick_size",
    "lot_size",
    "min_qty",
    "max_qty",
    "reference_price",
    "band_percent",
    "status",
)
_OPTIONAL_FIELDS = ("max_open_orders",)


def parse_symbol(name: object, params: object, partition_count: int) -> Symbol:
    """One registry entry (or AddSymbol's params) as a Symbol; DomainError INVALID_SYMBOL if it is wrong."""
    if not isinstance(name, str) or len(name) > _MAX_SYMBOL_CHARS or not _SYMBOL_NAME.fullmatch(name):
        raise DomainError(
            "INVALID_SYMBOL",
            f"symbol name {name!r} must be up to {_MAX_SYMBOL_CHARS} capital letters and digits, "
            "optionally joined by '.', '_' or '-' (e.g. BTC-USD)",
        )
    try:
        return _parse_params(name, params, partition_count)
    except DomainError as exc:
        raise DomainError("INVALID_SYMBOL", f"symbol {name!r}: {exc}") from None


def _parse_params(name: str, params: object, partition_count: int) -> Symbol:
    if not isinstance(params, Mapping):
        raise DomainError("INVALID_SYMBOL", f"expected a mapping of {', '.join(_FIELDS)}")
    _check_fields(params, _FIELDS, optional=_OPTIONAL_FIELDS)
    tick_size = parse_positive_decimal(params["tick_size"], "tick_size")
    lot_size = parse_positive_decimal(params["lot_size"], "lot_size")
    min_qty_lots = _field(params, "min_qty", qty_to_lots, lot_size)
    max_qty_lots = _field(params, "max_qty", qty_to_lots, lot_size)
    if min_qty_lots > max_qty_lots:
        raise DomainError(
            "INVALID_SYMBOL", f"min_qty {params['min_qty']} is above max_qty {params['max_qty']}"
        )
    band_bps = _band_bps(params["band_percent"])
    if band_bps > MAX_BAND_BPS:
        raise DomainError("INVALID_SYMBOL", f"band_percent {params['band_percent']} is above 100")
    status = params["status"]
    if status not in tuple(SymbolStatus):
        raise DomainError("INVALID_SYMBOL", f"status must be 'trading' or 'halted', got {status!r}")
    return Symbol(
        name=name,
        partition=_partition(params["partition"], partition_count),
        tick_size=tick_size,
        lot_size=lot_size,
        min_qty_lots=min_qty_lots,
        max_qty_lots=max_qty_lots,
        reference_price_ticks=_field(params, "reference_price", price_to_ticks, tick_size),
        band_bps=band_bps,
        status=SymbolStatus(status),
        max_open_orders=_max_open_orders(params.get("max_open_orders", DEFAULT_MAX_OPEN_ORDERS)),
    )


def _max_open_orders(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_OPEN_ORDERS:
        raise DomainError(
            "INVALID_SYMBOL",
            f"max_open_orders must be a whole number in 0..{MAX_OPEN_ORDERS} (0: no limit), got {value!r}",
        )
    return value


def _band_bps(text: object) -> int:
    """The price band in basis points; "0" means no band (a game or a test market may want none)."""
    if text == NO_BAND:
        return 0
    return _to_units(text, BASIS_POINT, "band_percent", "basis point", "INVALID_SYMBOL")


def _field(
    params: Mapping[str, object], field: str, convert: Callable[[object, Decimal], int], step: Decimal
) -> int:
    """Convert one field, naming the field (not just "price"/"qty") when it is wrong."""
    try:
        return convert(params[field], step)
    except DomainError as exc:
        raise DomainError(exc.reason, f"{field}: {exc}") from None


def _check_fields(
    mapping: Mapping[Any, object],
    expected: tuple[str, ...],
    reason: str = "INVALID_SYMBOL",
    optional: tuple[str, ...] = (),
) -> None:
    missing = [field for field in expected if field not in mapping]
    if missing:
        raise DomainError(reason, f"missing field {missing[0]!r}")
    known = expected + optional
    unknown = [key for key in mapping if key not in known]
    if unknown:
        raise DomainError(reason, f"unknown field {unknown[0]!r} (expected: {', '.join(known)})")


def _partition_count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PARTITIONS:
        raise DomainError(
            "INVALID_REGISTRY",
            f"partition_count must be a whole number in 1..{MAX_PARTITIONS}, got {value!r}",
        )
    return value


def _partition(partition: object, partition_count: int) -> int:
    if not isinstance(partition, int) or isinstance(partition, bool):
        raise DomainError("INVALID_SYMBOL", f"partition must be a whole number, got {partition!r}")
    if not 0 <= partition < partition_count:
        raise DomainError(
            "INVALID_SYMBOL",
            f"partition {partition} is outside 0..{partition_count - 1} (there are {partition_count})",
        )
    return partition


# --- the registry --------------------------------------------------------------------------------


class SymbolRegistry:
    """All symbols of the cluster and the number of partitions of the `orders` topic."""

    def __init__(self, partition_count: int, symbols: Iterable[Symbol]) -> None:
        """Index ``symbols``; DomainError for a bad partition_count, a duplicate or an unknown partition."""
        self.partition_count = _partition_count(partition_count)
        self._by_name: dict[str, Symbol] = {}
        for symbol in symbols:
            if symbol.name in self._by_name:
                raise DomainError("INVALID_REGISTRY", f"duplicate symbol {symbol.name!r}")
            _partition(symbol.partition, partition_count)
            self._by_name[symbol.name] = symbol

    def get(self, name: str) -> Symbol | None:
        """The symbol called ``name``, or None if the registry has no such symbol."""
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Symbol:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Symbol]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def symbols_of_partition(self, partition: int) -> tuple[Symbol, ...]:
        """The symbols matched by ``partition``'s matcher, in registry order."""
        return tuple(symbol for symbol in self._by_name.values() if symbol.partition == partition)


def parse_registry(document: object, source: str) -> SymbolRegistry:
    """Validate a parsed registry document; UserError naming ``source`` and the problem if wrong."""
    try:
        if not isinstance(document, Mapping):
            raise DomainError("INVALID_REGISTRY", "expected a mapping with 'partition_count' and 'symbols'")
        _check_fields(document, ("partition_count", "symbols"), "INVALID_REGISTRY")
        partition_count, entries = _partition_count(document["partition_count"]), document["symbols"]
        if not isinstance(entries, Mapping) or not entries:
            raise DomainError("INVALID_REGISTRY", "'symbols' must map each symbol name to its parameters")
        symbols = [parse_symbol(name, params, partition_count) for name, params in entries.items()]
        return SymbolRegistry(partition_count, symbols)
    except DomainError as exc:
        raise UserError(f"{source}: {exc}") from None


def load_registry(path: str | os.PathLike[str]) -> SymbolRegistry:
    """Read and validate the registry file; UserError (one line) if it is missing, malformed or invalid."""
    try:
        with open(path, encoding="utf-8") as file:
            document = yaml.load(file, Loader=_StrictLoader)  # a SafeLoader: builds plain data only
    except FileNotFoundError:
        raise UserError(f"symbol registry {os.fspath(path)} not found") from None
    except OSError as exc:
        raise UserError(f"symbol registry {os.fspath(path)} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{os.fspath(path)}: malformed YAML: {_yaml_problem(exc)}") from None
    return parse_registry(document, os.fspath(path))


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())
