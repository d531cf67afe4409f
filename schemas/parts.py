"""Records split into parts to stay under the record size bound, and joining them back.

No output record of a command is larger than a bound (DESIGN.md, Bounds): a cancel-all of
250,000 orders, a sweep through 100,000 levels or the book snapshot of a million orders would
otherwise be refused by the broker and fail its transaction after every restart. The matcher
(``matcher.wire.split_output``) cuts such a record along its lists into records numbered by
``part`` out of ``parts``; every part repeats the record's other fields, written in one
transaction and in part order. Readers that need the whole (a gateway waiting for its reply, a
relay loading a book snapshot) join them here; readers of events (``executions``, ``book``) can
take each part as it comes, since the events keep their order and their ``seq``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final

# The lists each splittable record is cut along, in the order its parts carry them; "book.bids"
# is the `bids` list of the record's `book` field (which may be null).
SPLIT_LISTS: Final = {
    "ExecutionReport": ("events",),
    "BookUpdate": ("events",),
    "BookSnapshot": ("bids", "asks"),
    "Reply": ("orders", "fills", "prevented_matches", "book.bids", "book.asks"),
}
# Parts waiting for their siblings, at most: a reader that loses a part must not grow for ever.
MAX_PENDING_RECORDS: Final = 10_000


def list_at(record: dict[str, Any], path: str) -> list[Any]:
    """The list at ``path`` (a field, or ``field.subfield``) of ``record``; empty under a null."""
    head, _, tail = path.partition(".")
    value = record[head]
    if tail:
        return [] if value is None else value[tail]  # type: ignore[no-any-return, unused-ignore]
    return value  # type: ignore[no-any-return]


def with_lists(schema: str, record: dict[str, Any], items: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of ``record`` whose split lists hold only ``items``, (path, item) pairs in order."""
    copy = dict(record)
    for path in SPLIT_LISTS[schema]:
        head, _, tail = path.partition(".")
        if not tail:
            copy[head] = []
        elif copy[head] is not None:
            copy[head] = {**copy[head], tail: []}
    for path, item in items:
        head, _, tail = path.partition(".")
        (copy[head][tail] if tail else copy[head]).append(item)
    return copy


def join_parts(schema: str, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole record from all its parts, given in part order."""
    items = [(path, item) for path in SPLIT_LISTS[schema] for part in parts for item in list_at(part, path)]
    whole = with_lists(schema, parts[0], items)
    whole["part"], whole["parts"] = 0, 1
    return whole


class PartJoiner:
    """Collects the parts of split records by an id and hands back each record once it is whole."""

    def __init__(self, schema: str, max_pending: int = MAX_PENDING_RECORDS) -> None:
        self.schema = schema
        self.max_pending = max_pending
        self._pending: dict[Hashable, dict[int, dict[str, Any]]] = {}

    def add(self, ident: Hashable, record: dict[str, Any]) -> dict[str, Any] | None:
        """The whole record once ``record`` completes it (at once if it was never split), else None.

        A part seen twice (the early and the committed copy of a reply) counts once.
        """
        parts = record.get("parts", 1)
        if parts <= 1:
            return record
        got = self._pending.setdefault(ident, {})
        got[record["part"]] = record
        if len(got) < parts:
            if len(self._pending) > self.max_pending:
                del self._pending[next(iter(self._pending))]  # the oldest: its other parts are lost
            return None
        del self._pending[ident]
        return join_parts(self.schema, [got[i] for i in range(parts)])

    def forget(self, ident: Hashable) -> None:
        """Drop the parts gathered for ``ident`` (its reader stopped waiting)."""
        self._pending.pop(ident, None)

    def pending(self) -> int:
        """How many records have some but not all of their parts here."""
        return len(self._pending)
