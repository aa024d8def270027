"""Latest-frame mailbox (depth 1) between subscription callbacks and the worker thread."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Item = TypeVar("Item")


class LatestMailbox(Generic[Item]):
    """Holds at most one item; ``put`` replaces an unread one and counts it as dropped.

    A slow model therefore always gets the newest frame, never a backlog, and the
    producer (a subscription callback) never waits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Item | None = None
        self._closed = False
        self.dropped = 0  # frames replaced before the worker took them
        self.received = 0

    def put(self, item: Item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.received += 1
            self._cond.notify()

    def get(self, timeout_s: float) -> Item | None:
        """The newest item, or None after ``timeout_s`` or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
