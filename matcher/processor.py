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
from matcher.wire import (
    MAX_RECORD_BYTES,
    Decoded,
    Output,
    UnwritableOutput,
    book_snapshot,
    decode_command,
    outputs_of,
    split_output,
)
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

# The longest identifier (request and gateway ids, symbol, account, client order id) a command may
# carry. Gateways send at most 64 characters; a producer that writes `orders` directly could
# otherwise make every event, and the engine's memory of every order, as large as a record.
MAX_ID_CHARS = 128
_ID_FIELDS = ("symbol", "account", "client_order_id")
_ORIGIN_ID_FIELDS = ("request_id", "gateway_id")

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
        *,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self.partition = partition
        self.partition_count = partition_count
        self.codec = codec
        self.source_topic = source_topic
        # A constant in service (replays must split as the original did); smaller only in tests.
        self.max_record_bytes = max_record_bytes
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
        too_long = _overlong_id(record)
        if too_long is not None:
            return DeadLetter("FIELD_TOO_LONG", f"{name}.{too_long} is over {MAX_ID_CHARS} characters")
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
        try:
            outputs = outputs_of(
                decoded, offset, events, self.partition, subject=self._subject(decoded, events), book=book
            )
            records = self.encode_all(outputs)
        except UnwritableOutput as exc:
            # The engine has applied the command (a replay applies it too); what it caused cannot
            # be written, and retrying would stall the partition: operators find it in the DLQ.
            dead = self._dead_letter(offset, message, DeadLetter(exc.reason, str(exc)))
            return Step("DLQ", True, events, [dead], decoded.symbol, decoded.origin.ts_ns)
        rejected = outputs[0].record["result"] == "REJECTED"
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
                records += self.encode_all(
                    [Output("book_snapshots", self.partition, symbol, "BookSnapshot", snapshot)]
                )
        return records

    def encode_all(self, outputs: Iterable[Output]) -> list[Record]:
        """The records of ``outputs``: one each, or its parts when it is over the size bound."""
        records = []
        for output in outputs:
            record = self.encode(output)
            if len(record.value) <= self.max_record_bytes:
                records.append(record)
            else:
                records += map(self.encode, split_output(output, self._encoded_size, self.max_record_bytes))
        return records

    def encode(self, output: Output) -> Record:
        write, headers = self._writers[output.schema]
        return Record(output.role, output.partition, output.key.encode(), write(output.record), headers)

    def _encoded_size(self, output: Output) -> int:
        return len(self._writers[output.schema][0](output.record))

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


def _overlong_id(record: Mapping[str, Any]) -> str | None:
    """The first identifier field of a command record longer than MAX_ID_CHARS, if any."""
    origin = record["origin"]
    for name in _ORIGIN_ID_FIELDS:
        if len(origin[name]) > MAX_ID_CHARS:
            return f"origin.{name}"
    for name in _ID_FIELDS:
        value = record.get(name)
        if value is not None and len(value) > MAX_ID_CHARS:
            return name
    return None


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
