"""Fan-out of one job's progress events to any number of watchers.

Each watcher has its own bounded queue. Step events are dropped for a
watcher that falls behind (the next one supersedes them); state and epoch
events are never dropped, since a watcher needs them to know where the job
stands and when it ended.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

# Events queued for one watcher before step events start being dropped.
QUEUE_SIZE = 256


@dataclass(frozen=True)
class Event:
    """One thing that happened to a job: kind is job, step or epoch."""

    kind: str
    payload: Any


class Subscription:
    """A watcher's queue; ``close`` ends its iteration at once."""

    _CLOSED = object()

    def __init__(self, channel: EventChannel) -> None:
        self._channel = channel
        self._queue: queue.Queue = queue.Queue()

    def offer(self, event: Event) -> None:
        if event.kind == "step" and self._queue.qsize() >= QUEUE_SIZE:
            return
        self._queue.put(event)

    def next(self, timeout: float) -> Event | None:
        """The next event; None on timeout. Raises StopIteration once closed."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._CLOSED:
            self._queue.put(item)  # stay closed for any later call
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop this watcher and forget it."""
        self._channel.unsubscribe(self)
        self._queue.put(self._CLOSED)


class EventChannel:
    """Publishes a job's events to its current subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, kind: str, payload: Any) -> None:
        event = Event(kind, payload)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.offer(event)

    def close(self) -> None:
        """End every subscription."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.close()

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscribers)
