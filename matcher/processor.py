"""One `orders` record in, its output records out: the matcher's step, without Kafka.

The service, the recovery replay and ``exchange verify`` all go through :class:`Processor`,
so the bytes a replay expects are made by the very code that made the originals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from confluent_kafka import Message

from matcher.core import (
    Amend,
    Cancel,
    Event,
    Fill,
    MatchingEngine,
    NewOrder,
    OrderAmended,
    OrderCancelled,
    OrderState,
    SymbolParams,
)
from matcher.wire import Decoded, Output, book_snapshot, decode_command, outputs_of
from schemas import Codec, DecodeError
from schemas.codec import Headers, HeaderValue

COMMANDS = frozenset(
    {
        "NewOrder",
        "CancelOrder",
        "CancelAll",
        "AmendOrder",
        "Query",
        "HaltSymbol",
        "ResumeSymbol",
        "AddSymbol",
        "RequestBookSnapshot",
    }
)

# The records a command's outputs are made of (dead letters and state snapshots are written apart).
OUTPUTS = ("Reply", "ExecutionReport", "BookUpdate", "BookSnapshot", "SymbolUpdate")


class Record(NamedTuple):
    """An encoded record ready to produce: topic role, partition, key, value and headers."""

    role: str
    partition: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class DeadLetter(NamedTuple):
    """An `orders` record that is not a command we can read, with the reason."""

    reason: str
    error: str


class Step(NamedTuple):
    """What one `orders` record did: its kind (a schema name, or DLQ), its events, its records."""

    kind: str
    rejected: bool
    events: list[Event]
    records: list[Record]
    symbol: str | None = None
    ts_ns: int | None = None


class Tally:
    """What a batch's commands did: counts by (kind, result), fills and traded lots, the symbols whose
    books changed (added to ``touched``) and the last command's time. The service adds it to its
    metrics once per batch, not once per command."""

    def __init__(self, touched: set[str], last_ts: int) -> None:
        self.commands: dict[tuple[str, str], int] = {}
        self.fills = 0
        self.traded_lots = 0
        self.touched = touched
        self.last_ts = last_ts

    def add(self, step: Step) -> None:
        result = "dlq" if step.kind == "DLQ" else "rejected" if step.rejected else "accepted"
        key = (step.kind, result)
        self.commands[key] = self.commands.get(key, 0) + 1
        for event in step.events:
            if type(event) is Fill:
                fill: Any = event
                self.fills += 1
                self.traded_lots += fill.qty
        if step.events and step.symbol is not None:
            self.touched.add(step.symbol)
        if step.ts_ns is not None:
            self.last_ts = step.ts_ns


class Processor:
    """Applies `orders` records of one partition to a matching engine and encodes what they produce."""

    def __init__(
        self,
        partition: int,
        partition_count: int,
        codec: Codec,
        symbols: Iterable[SymbolParams],
        source_topic: str = "orders",
    ) -> None:
        self.partition = partition
        self.partition_count = partition_count
        self.codec = codec
        self.source_topic = source_topic
        self.engine = MatchingEngine(partition, symbols)
        self._writers = {name: codec.trusted_writer(name) for name in OUTPUTS}

    def read(self, value: bytes | None, headers: Headers) -> Decoded | DeadLetter:
        """The command in an `orders` record, or why it is not one."""
        try:
            name, record = self.codec.decode(value, headers)
        except DecodeError as exc:
            return DeadLetter(exc.reason, str(exc))
        if name not in COMMANDS:
            return DeadLetter("NOT_A_COMMAND", f"{name} is not a command")
        return decode_command(name, record, self.partition, self.partition_count)

    def replay(self, message: Message) -> None:
        """Apply an `orders` record to the engine, producing nothing (its outputs were committed before)."""
        decoded = self.read(message.value(), message.headers())
        if isinstance(decoded, Decoded) and decoded.command is not None and decoded.rejection is None:
            self.engine.apply(decoded.command, record_offset(message))

    def step(self, message: Message) -> Step:
        """Apply an `orders` record and encode every record it produces."""
        offset = record_offset(message)
        decoded = self.read(message.value(), message.headers())
        if isinstance(decoded, DeadLetter):
            return Step("DLQ", True, [], [self._dead_letter(offset, message, decoded)])
        events: list[Event] = []
        if decoded.command is not None and decoded.rejection is None:
            events = self.engine.apply(decoded.command, offset)
        book = None
        if decoded.name == "RequestBookSnapshot":
            book = self.engine.book_depth(decoded.symbol, None, decoded.origin.ts_ns)
        outputs = outputs_of(
            decoded, offset, events, self.partition, subject=self._subject(decoded, events), book=book
        )
        rejected = outputs[0].record["result"] == "REJECTED"
        records = [self.encode(output) for output in outputs]
        return Step(decoded.name, rejected, events, records, decoded.symbol, decoded.origin.ts_ns)

    def step_all(self, messages: Iterable[Message], records: list[Record], tally: Tally) -> None:
        """:meth:`step` each record in turn: output records go to ``records``, counts to ``tally``."""
        for message in messages:
            step = self.step(message)
            records += step.records
            tally.add(step)

    def book_snapshots(self, symbols: Iterable[str], ts_ns: int) -> list[Record]:
        """BookSnapshot records of these symbols' whole books as they stand."""
        records = []
        for symbol in symbols:
            depth = self.engine.book_depth(symbol, None, ts_ns)
            if depth is not None:
                snapshot = book_snapshot(depth)
                records.append(
                    self.encode(Output("book_snapshots", self.partition, symbol, "BookSnapshot", snapshot))
                )
        return records

    def encode(self, output: Output) -> Record:
        write, headers = self._writers[output.schema]
        return Record(output.role, output.partition, output.key.encode(), write(output.record), headers)

    def _subject(self, decoded: Decoded, events: list[Event]) -> OrderState | None:
        """The state after the command of the one order it placed, cancelled or amended."""
        command = decoded.command
        if any(type(e) is OrderState for e in events):
            return None  # a repeated client order id: the core already answered with the order's state
        if type(command) is NewOrder and command.client_order_id is not None:
            return self.engine.order_by_client_id(command.account, command.client_order_id)
        if type(command) in (Cancel, Amend):
            for event in events:
                if type(event) in (OrderCancelled, OrderAmended):
                    touched: Any = event
                    if touched.client_order_id is not None:
                        return self.engine.order_by_client_id(touched.account, touched.client_order_id)
                    return self.engine.order_state(touched.order_id)
        return None

    def _dead_letter(
        self,
        offset: int,
        message: Message,
        dead: DeadLetter,
    ) -> Record:
        key, value = message.key(), message.value()
        record = {
            "source_topic": self.source_topic,
            "source_partition": self.partition,
            "source_offset": offset,
            "key": key,
            "value": value,
            "headers": [{"key": k, "value": _as_bytes(v)} for k, v in _header_items(message.headers())],
            "reason": dead.reason,
            "error": dead.error,
        }
        encoded, dlq_headers = self.codec.encode("DeadLetter", record)
        return Record("orders_dlq", self.partition, key or b"", encoded, dlq_headers)


def record_offset(message: Message) -> int:
    """The offset of a record (typed as optional by the client library, always set on records)."""
    offset = message.offset()
    if offset is None:  # only events (errors, partition ends) lack one, and they never get here
        raise ValueError("a record without an offset")
    return offset


def _header_items(headers: Headers) -> Iterable[tuple[str, HeaderValue]]:
    if headers is None:
        return []
    return headers.items() if isinstance(headers, Mapping) else headers


def _as_bytes(value: HeaderValue) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
