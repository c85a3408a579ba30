"""A persistent recursive watch on one kazoo session, and reading the nodes it reports.

kazoo 2.11 reads every watch notification (reply xid -1) in its connection's
``_read_watch_event``, hands it to the one-shot watchers registered for that
path and pops them. A persistent watch has no kazoo watcher, so
:class:`PersistentWatch` wraps that method on the client's connection: a
notification for a path under the watched root is queued first, then
kazoo's own handling runs unchanged (a one-shot watcher on the same path
still fires, once).

The server keeps a watch per connection, not per session: after a
reconnect kazoo re-registers only its own watchers (SetWatches). Each
connection state change is therefore queued as a :class:`Gap`; whoever
consumes the queue re-adds the watch and decides, from the zxids, whether
changes may have been missed in between.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.serialization import Watch
from kazoo.protocol.states import KazooState

from zkdrift.model import Znode
from zkdrift.paths import is_under
from zkdrift.zk.protocol import (
    PERSISTENT_RECURSIVE,
    add_watch_async,
    get_data_op,
    multi_read_async,
)
from zkdrift.zk.reader import to_stat

log = logging.getLogger(__name__)

# WatcherEvent types a persistent recursive watch delivers (no child events).
KINDS = {1: "created", 2: "deleted", 3: "changed"}
BATCH = 500  # getData operations per multiRead


@dataclass(frozen=True, slots=True)
class Notification:
    """One change the server reported: ``kind`` is created, changed or deleted."""

    kind: str
    path: str  # without the client's chroot


@dataclass(frozen=True, slots=True)
class Gap:
    """The connection changed state; notifications may have been lost.

    ``state`` is ``suspended`` (the connection dropped), ``connected`` (back,
    same session) or ``lost`` (the session expired: a new one follows).
    ``zxid`` is the last zxid the client had seen when it happened.
    """

    state: str
    zxid: int


def _prefix(chroot: str, path: str) -> str:
    if not chroot:
        return path
    return chroot if path == "/" else chroot + path


class PersistentWatch:
    """A persistent recursive watch on ``root``, its notifications and gaps queued in
    arrival order on :attr:`queue`."""

    def __init__(self, client: KazooClient, root: str) -> None:
        self.client = client
        self.root = root
        self.server_root = _prefix(client.chroot or "", root)
        self.queue: queue.SimpleQueue[Notification | Gap] = queue.SimpleQueue()
        self._connection = client._connection
        self._original = self._connection._read_watch_event
        self._connection._read_watch_event = self._read_watch_event
        client.add_listener(self._on_state)

    def _read_watch_event(self, buffer: bytes, offset: int) -> Any:
        try:
            watch, _ = Watch.deserialize(buffer, offset)
            kind = KINDS.get(watch.type)
            if kind is not None and is_under(watch.path, self.server_root):
                self.queue.put(Notification(kind, self.client.unchroot(watch.path)))
        except Exception:  # never break kazoo's reader thread
            log.exception("could not read a watch notification")
        return self._original(buffer, offset)

    def _on_state(self, state: Any) -> bool:
        name = {
            KazooState.SUSPENDED: "suspended",
            KazooState.CONNECTED: "connected",
            KazooState.LOST: "lost",
        }.get(state)
        if name is not None:
            self.queue.put(Gap(name, int(self.client.last_zxid or 0)))
        return False  # stay registered

    def add(self, timeout: float) -> None:
        """Set the watch on the server (again). Raises kazoo's ``UnimplementedError``
        when the server has no addWatch (ZooKeeper < 3.6; it then hangs up)."""
        add_watch_async(self.client, self.server_root, PERSISTENT_RECURSIVE).get(timeout=timeout)

    def close(self) -> None:
        self.client.remove_listener(self._on_state)
        if self._connection._read_watch_event == self._read_watch_event:
            self._connection._read_watch_event = self._original


def sync_zxid(client: KazooClient, path: str, timeout: float) -> int:
    """``sync`` ``path`` and return the zxid the server answered with."""
    client.sync_async(path).get(timeout=timeout)
    return int(client.last_zxid or 0)


def fetch_nodes(
    client: KazooClient, paths: Sequence[str], timeout: float
) -> dict[str, Znode | None]:
    """Each path's data and stat now (None for a node that is gone), in multiRead
    batches. Connection errors propagate: the caller treats them as a gap."""
    chroot = client.chroot or ""
    pending = [
        (
            paths[i : i + BATCH],
            multi_read_async(
                client, [get_data_op(_prefix(chroot, p)) for p in paths[i : i + BATCH]]
            ),
        )
        for i in range(0, len(paths), BATCH)
    ]
    found: dict[str, Znode | None] = {}
    for batch, async_result in pending:
        for path, result in zip(batch, async_result.get(timeout=timeout), strict=True):
            if isinstance(result, NoNodeError):
                found[path] = None
            elif isinstance(result, Exception):
                raise result
            else:
                data, stat = result
                found[path] = Znode(path, data or b"", to_stat(stat))
    return found
