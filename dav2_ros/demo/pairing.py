"""Pairs messages of two streams that carry the same header stamp (exact match).

The demo's camera stamps image, camera_info and ground truth identically and the
depth node copies the image's stamp (REP: outputs carry acquisition time), so an
exact-time match is correct; bounded buffers keep memory flat when one side drops.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

A = TypeVar("A")
B = TypeVar("B")


class StampPairer(Generic[A, B]):
    """Holds up to ``capacity`` unmatched items per side; oldest are evicted first."""

    def __init__(self, capacity: int = 60) -> None:
        self.capacity = capacity
        self._left: OrderedDict[int, A] = OrderedDict()
        self._right: OrderedDict[int, B] = OrderedDict()
        self.evicted = 0

    def add_left(self, stamp_ns: int, item: A) -> tuple[A, B] | None:
        """Keep ``item`` unless its right partner is here: then return the pair."""
        match = self._add(stamp_ns, item, self._left, self._right)
        return None if match is None else (item, match)

    def add_right(self, stamp_ns: int, item: B) -> tuple[A, B] | None:
        """Keep ``item`` unless its left partner is here: then return the pair."""
        match = self._add(stamp_ns, item, self._right, self._left)
        return None if match is None else (match, item)

    def _add(self, stamp_ns: int, item, own: OrderedDict, other: OrderedDict):
        match = other.pop(stamp_ns, None)
        if match is None:
            own[stamp_ns] = item
            while len(own) > self.capacity:
                own.popitem(last=False)
                self.evicted += 1
        return match


def stamp_ns(header) -> int:
    """A ``std_msgs/Header`` stamp as integer nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
