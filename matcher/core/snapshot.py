"""The byte format of engine snapshots: a versioned header, then the state as marshalled plain values.

Layout: ``MAGIC`` (8 bytes), the format version (unsigned 16-bit, big-endian), the payload
length (unsigned 64-bit, big-endian), then the payload: ``marshal`` (version 2) of a tuple
of plain values only (int, str, bool, None, tuples and lists of them), never of our objects,
so a snapshot survives any change of the engine's classes. The engine defines what the tuple
holds for each format version; this module only frames it.

marshal is the fastest stdlib encoder of such values: a million resting orders encode or decode
in about half a second. Version 2 is used because it writes no back-references (newer versions
do, which makes encoding three times slower) and writes every string the same way whether or
not it is interned, so equal payloads always give equal bytes: the state hash relies on that.
"""

from __future__ import annotations

import marshal
import struct
from collections.abc import Collection
from typing import Any, Final

MAGIC: Final = b"XCORESNP"
_HEADER: Final = struct.Struct(">HQ")
_MARSHAL_VERSION: Final = 2


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this engine can read."""


def encode(version: int, payload: tuple[Any, ...]) -> bytes:
    """Frame `payload` (plain values only) as a snapshot of format `version`."""
    body = marshal.dumps(payload, _MARSHAL_VERSION)
    return MAGIC + _HEADER.pack(version, len(body)) + body


def decode(versions: Collection[int], data: bytes) -> tuple[int, tuple[Any, ...]]:
    """The format version and payload of a snapshot of one of `versions`; SnapshotError for anything else."""
    start = len(MAGIC) + _HEADER.size
    if len(data) < start or data[: len(MAGIC)] != MAGIC:
        raise SnapshotError("not a matching-core snapshot")
    found, length = _HEADER.unpack_from(data, len(MAGIC))
    if found not in versions:
        readable = ", ".join(map(str, sorted(versions)))
        raise SnapshotError(f"snapshot format version {found}; this engine reads version {readable}")
    if len(data) - start != length:
        raise SnapshotError(
            f"snapshot is truncated or padded: {len(data) - start} payload bytes, {length} expected"
        )
    try:
        payload = marshal.loads(data[start:])
    except (EOFError, ValueError, TypeError) as exc:
        raise SnapshotError(f"snapshot payload is corrupt: {exc}") from exc
    if not isinstance(payload, tuple):
        raise SnapshotError("snapshot payload is not a tuple")
    return found, payload
