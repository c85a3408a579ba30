"""Running a watcher inside a test, and waiting for what it records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from zkdrift.app import App
from zkdrift.status import TreeStatus, tree_statuses
from zkdrift.watch import EventSink, Watcher

T = TypeVar("T")


@contextmanager
def watching(app: App, *names: str, sink: EventSink | None = None) -> Iterator[Watcher]:
    """A :class:`Watcher` running in a thread until the block ends."""
    watcher = Watcher(app, names, sink=sink)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield watcher
    finally:
        watcher.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the watcher did not stop"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """``probe()`` once it returns something truthy; fails after ``timeout`` (generous:
    a condition that holds is usually met within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def status_of(app: App, name: str) -> TreeStatus:
    return tree_statuses(app, [name])[0]


def resynced(app: App, name: str, count: int = 1) -> Callable[[], bool]:
    """A probe: the tree was resynchronised at least ``count`` times."""
    from zkdrift.store import trees as tree_store
    from zkdrift.store import watch as watch_store

    def probe() -> bool:
        with app.db.session() as session:
            tree = tree_store.get_tree(session, name)
            return len(watch_store.events_of(session, tree, kinds=[watch_store.RESYNC])) >= count

    return probe
