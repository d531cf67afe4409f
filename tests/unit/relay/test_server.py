"""The relay's writer: what one socket write of a client's queue takes."""

from __future__ import annotations

from collections import deque

from relay.hub import Message
from relay.server import _take


def test_a_write_takes_queued_messages_in_order_until_the_limit_is_reached() -> None:
    queue: deque[Message] = deque([(b"a" * 40, 1), (b"b" * 40, 2), (b"c" * 40, 3), (b"d", 4)])

    taken = _take(queue, 64)

    assert [ts for _, ts in taken] == [1, 2]
    assert [ts for _, ts in queue] == [3, 4]


def test_a_message_larger_than_the_limit_still_goes_alone() -> None:
    queue: deque[Message] = deque([(b"x" * 100, 1), (b"y", 2)])

    assert [ts for _, ts in _take(queue, 64)] == [1]
    assert [ts for _, ts in _take(queue, 64)] == [2]
    assert not queue
