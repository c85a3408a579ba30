"""The tree's lock: a kazoo ``Lock`` with a connection-state watch.

One apply at a time per tree. Each contender writes an identifier (host,
process, run, actor, time) into its lock node so that ``zkdrift lock
status`` can name the holder. The lock node is ephemeral: it vanishes with
the holder's session, so a crashed process frees the lock once its session
times out. A hung process does not; ``break_lock`` removes its node.

kazoo's ``Lock`` does not notice that its session is gone: after LOST it
still says ``is_acquired`` and would try to delete a node that the server
already removed (or, worse, that a retry re-created for somebody else). The
:class:`ConnectionWatch` listener records SUSPENDED and LOST so the writer
stops sending, and :class:`TreeLock` forgets the kazoo lock on LOST.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, LockTimeout, NoNodeError
from kazoo.protocol.states import KazooState

from zkdrift.errors import ZkDriftError
from zkdrift.paths import join, validate_path

# kazoo's Lock names contender nodes '<uuid>__lock__<10-digit sequence>'.
_CONTENDER = re.compile(r"__lock__(-?\d{10})\Z")


class LockHeldError(ZkDriftError):
    """The tree's lock is held by another run."""

    def __init__(self, message: str, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.holder = holder


class ConnectionLostError(ZkDriftError):
    """The ZooKeeper session was lost (or stayed suspended too long): stop writing."""


def lock_path(lock_root: str, tree_name: str) -> str:
    """Where the lock of ``tree_name`` lives: ``<lock_root>/<tree_name>``."""
    return validate_path(join(validate_path(lock_root), tree_name))


def make_identifier(run_id: str, actor: str, *, purpose: str = "apply") -> str:
    """The text a contender writes into its lock node: who, where, which run."""
    return json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run": run_id,
            "actor": actor,
            "purpose": purpose,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class LockHolder:
    """One contender for a tree's lock, as read from its lock node."""

    node: str
    sequence: int
    host: str | None
    pid: int | None
    run: str | None
    actor: str | None
    purpose: str | None
    since: str | None
    session_id: int
    ephemeral: bool
    raw: str

    @property
    def local_process_gone(self) -> bool:
        """True when the holder names this host and a pid that no longer runs here."""
        if self.host != socket.gethostname() or self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "host": self.host,
            "pid": self.pid,
            "run": self.run,
            "actor": self.actor,
            "purpose": self.purpose,
            "since": self.since,
            "session_id": f"{self.session_id:#x}",
            "ephemeral": self.ephemeral,
            "local_process_gone": self.local_process_gone,
        }

    def describe(self) -> str:
        if self.host is None:
            return f"lock node {self.node} ({self.raw[:80]!r})"
        who = f"{self.actor} " if self.actor else ""
        run = f", run {self.run}" if self.run else ""
        since = f" since {self.since}" if self.since else ""
        return f"{who}on {self.host} (pid {self.pid}{run}){since}"


@dataclass(frozen=True)
class LockStatus:
    path: str
    holder: LockHolder | None
    waiters: tuple[LockHolder, ...]

    @property
    def locked(self) -> bool:
        return self.holder is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "locked": self.locked,
            "holder": None if self.holder is None else self.holder.as_json(),
            "waiters": [w.as_json() for w in self.waiters],
        }


def _holder(node: str, sequence: int, data: bytes, stat: Any) -> LockHolder:
    raw = data.decode("utf-8", "replace")
    info: dict[str, Any] = {}
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            info = parsed
    except ValueError:
        pass
    pid = info.get("pid")
    return LockHolder(
        node=node,
        sequence=sequence,
        host=info.get("host"),
        pid=pid if isinstance(pid, int) else None,
        run=info.get("run"),
        actor=info.get("actor"),
        purpose=info.get("purpose"),
        since=info.get("since"),
        session_id=stat.ephemeralOwner,
        ephemeral=stat.ephemeralOwner != 0,
        raw=raw,
    )


def contenders(client: KazooClient, path: str) -> list[LockHolder]:
    """Every contender for the lock at ``path``, holder first."""
    try:
        children = client.get_children(path)
    except NoNodeError:
        return []
    ordered = sorted(
        (int(m.group(1)), child) for child in children if (m := _CONTENDER.search(child))
    )
    out: list[LockHolder] = []
    for sequence, child in ordered:
        try:
            data, stat = client.get(join(path, child))
        except NoNodeError:
            continue  # released while we looked
        out.append(_holder(child, sequence, data or b"", stat))
    return out


def lock_status(client: KazooClient, path: str) -> LockStatus:
    found = contenders(client, path)
    return LockStatus(path, found[0] if found else None, tuple(found[1:]))


def break_lock(client: KazooClient, path: str, *, everyone: bool = False) -> list[LockHolder]:
    """Delete the holder's lock node (every contender's with ``everyone``); returns them.

    Only for a holder that is known to be stuck: its process believes it
    still holds the lock.
    """
    found = contenders(client, path)
    victims = found if everyone else found[:1]
    removed: list[LockHolder] = []
    for holder in victims:
        try:
            client.delete(join(path, holder.node))
        except NoNodeError:
            continue
        removed.append(holder)
    return removed


class ConnectionWatch:
    """Follows a client's connection state from kazoo's listener thread.

    ``suspended`` is set while the connection is down and the session may
    still be alive; ``lost`` is set once the session is gone and stays set:
    a new session does not bring back the lock or the ephemeral nodes.
    """

    def __init__(self, client: KazooClient) -> None:
        self.client = client
        self.lost = threading.Event()
        self.suspended = threading.Event()
        self._connected = threading.Event()
        if client.state == KazooState.CONNECTED:
            self._connected.set()
        client.add_listener(self._listener)

    def _listener(self, state: str) -> bool:
        # Runs on kazoo's event thread: set flags, never block.
        if state == KazooState.LOST:
            self.lost.set()
            self._connected.clear()
            self.suspended.set()
            return True  # stays lost: stop listening
        if state == KazooState.SUSPENDED:
            self._connected.clear()
            self.suspended.set()
        elif state == KazooState.CONNECTED:
            self.suspended.clear()
            self._connected.set()
        return False

    def check(self, wait: float) -> None:
        """Return when it is safe to send; raise :class:`ConnectionLostError` if not.

        On SUSPENDED, waits up to ``wait`` seconds for the same session to
        come back before giving up.
        """
        if self.lost.is_set():
            raise ConnectionLostError("the ZooKeeper session was lost; nothing more was sent")
        if self.suspended.is_set() and not self._connected.wait(wait):
            raise ConnectionLostError(
                f"the ZooKeeper connection was suspended for more than {wait:g}s;"
                " nothing more was sent"
            )
        if self.lost.is_set():
            raise ConnectionLostError("the ZooKeeper session was lost; nothing more was sent")

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the same session to be connected again."""
        return self._connected.wait(timeout) and not self.lost.is_set()

    def close(self) -> None:
        self.client.remove_listener(self._listener)


class TreeLock:
    """The kazoo ``Lock`` of one tree, aware of session loss."""

    def __init__(
        self, client: KazooClient, path: str, identifier: str, watch: ConnectionWatch
    ) -> None:
        self.client = client
        self.path = path
        self.identifier = identifier
        self.watch = watch
        self._lock: Any = client.Lock(path, identifier)

    @property
    def node_path(self) -> str | None:
        """The path of our lock node while we hold it: the writer's fence."""
        node = self._lock.node
        if not self.held or not node:
            return None
        return join(self.path, str(node))

    @property
    def held(self) -> bool:
        return bool(self._lock.is_acquired) and not self.watch.lost.is_set()

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: do not wait).

        Raises :class:`LockHeldError` naming the holder when it stays taken.
        """
        try:
            got = (
                self._lock.acquire(blocking=False)
                if timeout <= 0
                else self._lock.acquire(timeout=timeout)
            )
        except LockTimeout:
            got = False
        if not got:
            status = lock_status(self.client, self.path)
            holder = status.holder
            who = holder.describe() if holder is not None else "another run"
            waited = f" after waiting {timeout:g}s" if timeout > 0 else ""
            raise LockHeldError(f"the lock {self.path} is held by {who}{waited}", holder)

    def release(self, reconnect_wait: float = 3.0) -> None:
        """Delete our lock node; after LOST, or SUSPENDED for good, only forget it.

        After LOST the server already dropped the node with the session: a
        delete could only hit a node that is no longer ours. While suspended,
        waits up to ``reconnect_wait`` seconds for the session to come back
        (a dropped connection usually reconnects at once) and then deletes
        the node, so the next apply need not wait for the session to expire;
        if it stays down, the node goes when the server expires the session.
        """
        if self.watch.suspended.is_set() and not self.watch.lost.is_set():
            self.watch.wait_connected(reconnect_wait)
        if self.watch.lost.is_set() or self.watch.suspended.is_set():
            self._lock.is_acquired = False
            self._lock.node = None
            return
        try:
            self._lock.release()
        except KazooException:
            # Connection down: the node goes when the session expires.
            self._lock.is_acquired = False


@contextmanager
def held_lock(
    client: KazooClient, path: str, identifier: str, *, wait: float
) -> Iterator[TreeLock]:
    """Hold the lock at ``path`` for the ``with`` block, watching the connection.

    Waits up to ``wait`` seconds (0: not at all) and raises
    :class:`LockHeldError` naming the holder when it stays taken. The lock
    is released on the way out however the block ends; after a lost session
    it is only forgotten (the server already dropped the node).
    """
    watch = ConnectionWatch(client)
    lock = TreeLock(client, path, identifier, watch)
    try:
        lock.acquire(wait)
        try:
            yield lock
        finally:
            lock.release()
    finally:
        watch.close()
