"""Joins messages of several streams that carry the same header stamp (exact match).

The demo's camera stamps image, camera_info, ground truth and sparse depth identically
and the depth node copies the image's stamp (REP: outputs carry acquisition time), so
an exact-time match is correct; a bounded buffer keeps memory flat when a stream drops.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any


class StampJoiner:
    """Collects one item per part for each stamp; holds up to ``capacity`` incomplete
    stamps, evicting the oldest first and counting which parts they had."""

    def __init__(self, parts: Sequence[str], capacity: int = 60) -> None:
        if len(set(parts)) != len(parts) or len(parts) < 2:
            raise ValueError(f"a join needs at least two distinct parts, got {list(parts)}")
        self.parts = tuple(parts)
        self.capacity = capacity
        self._pending: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.evicted = 0
        self.evicted_with: Counter[frozenset[str]] = Counter()  # parts an evicted stamp had

    def add(self, part: str, stamp_ns: int, item: Any) -> dict[str, Any] | None:
        """Keep ``item``; when it completes its stamp, return ``{part: item}`` for all parts."""
        if part not in self.parts:
            raise ValueError(f"unknown part {part!r}; this join has {self.parts}")
        held = self._pending.setdefault(stamp_ns, {})
        held[part] = item
        if len(held) == len(self.parts):
            return self._pending.pop(stamp_ns)
        while len(self._pending) > self.capacity:
            _, dropped = self._pending.popitem(last=False)
            self.evicted += 1
            self.evicted_with[frozenset(dropped)] += 1
        return None

    def pending_with(self, parts: frozenset[str], before_ns: int) -> int:
        """Incomplete stamps older than ``before_ns`` holding exactly ``parts``: at the end
        of a run, frames whose missing part was never coming."""
        return sum(1 for s, held in self._pending.items() if s < before_ns and held.keys() == parts)

    def evicted_having(self, part: str) -> int:
        """Stamps evicted incomplete that held ``part`` (e.g. ground truth never matched)."""
        return sum(n for parts, n in self.evicted_with.items() if part in parts)


def stamp_ns(header) -> int:
    """A ``std_msgs/Header`` stamp as integer nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
