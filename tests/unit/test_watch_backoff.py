"""How long a tree's watcher waits before it tries again after a failed session: the
wait doubles while sessions fail before reading the tree, and starts short again
once a session read it (a watcher that ran for days does not wait 30 s)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from kazoo.exceptions import ConnectionLoss

from zkdrift.watch import TreeWatcher


class _Sessions(TreeWatcher):
    """A watcher whose sessions play ``script``: "fail" fails before the tree is read,
    "read-then-fail" reads it (one resync) and then fails. The waits are recorded,
    not waited; the watcher stops when the script ends."""

    def __init__(self, script: list[str]) -> None:
        settings = SimpleNamespace(
            watch_debounce_seconds=0.1, watch_poll_seconds=1.0, watch_fallback_seconds=60.0
        )
        super().__init__(SimpleNamespace(settings=settings), "app", sink=None)  # type: ignore[arg-type]
        self.script: Iterator[str] = iter(script)
        self.waits: list[float] = []
        self._stop.wait = self._record  # type: ignore[method-assign]

    def _record(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        return False

    def _session(self) -> None:
        step = next(self.script, None)
        if step is None:
            self._stop.set()
            return
        if step == "read-then-fail":
            self.resyncs += 1
        raise ConnectionLoss()

    def _status(self, mode: str) -> None:
        pass


def waits(script: list[str]) -> list[float]:
    watcher = _Sessions(script)
    watcher._run()
    return watcher.waits


def test_sessions_that_fail_before_reading_the_tree_wait_longer_each_time_up_to_30s() -> None:
    assert waits(["fail"] * 7) == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_session_that_read_the_tree_before_it_failed_starts_the_wait_short_again() -> None:
    script = ["fail"] * 5 + ["read-then-fail", "fail", "read-then-fail"]
    assert waits(script) == [1.0, 2.0, 4.0, 8.0, 16.0, 1.0, 2.0, 1.0]


def test_the_reason_the_next_session_records_names_the_error() -> None:
    watcher: Any = _Sessions(["fail"])
    watcher._run()
    assert watcher._why_start.startswith("watching again after an error: ")
