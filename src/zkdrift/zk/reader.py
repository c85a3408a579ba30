"""Pipelined tree reader that rides out what ZooKeeper rides out.

One session, many requests in flight. On ZooKeeper >= 3.6 the walk goes level
by level with batched ``multiRead`` requests (see :mod:`zkdrift.zk.protocol`):
``getData`` for every node of a level, then ``getChildren`` only where
``numChildren > 0``, with at most :data:`IN_FLIGHT` batches of :data:`BATCH`
operations outstanding, so a wide level never makes the server serialise
hundreds of megabytes at once. Older servers answer multiRead with
UNIMPLEMENTED and close the connection; the reader then waits for the
session to reconnect and walks with one asynchronous request per node,
remembering the answer for that connection string.

A read starts with ``sync`` on the root, so a follower that lags the leader
catches up before it answers, and records the zxids it saw: the server's
last zxid when the read started and when it ended. A connection lost during
the read (a server killed, a network blip) is waited out while the session
lives: the reader waits for the reconnect, syncs again (the new server may
be another follower) and reads the interrupted level again, data and
children. Levels read before the loss were true when they were read, and
every level after it is read from a server at least as current; so the
result is exactly what a read without the interruption, taken over the same
span of zxids, would have returned. Nodes that changed within that span
make the read *fuzzy* (see :attr:`zkdrift.model.TreeState.fuzzy`). The read fails only when the
session is lost or the deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoNodeError,
    SessionExpiredError,
    UnimplementedError,
)
from kazoo.protocol.states import KazooState

from zkdrift.errors import RootNotFoundError, ZkDriftError
from zkdrift.model import Acl, Stat, TreeState, Znode
from zkdrift.paths import InvalidPathError, join, matches_any, validate_path
from zkdrift.zk.protocol import get_children_op, get_data_op, multi_read_async


class ZkReadError(ZkDriftError):
    """The live tree could not be read completely."""


def to_stat(s: Any) -> Stat:
    return Stat(
        version=s.version,
        cversion=s.cversion,
        aversion=s.aversion,
        czxid=s.czxid,
        mzxid=s.mzxid,
        pzxid=s.pzxid,
        ctime=s.ctime,
        mtime=s.mtime,
        ephemeral_owner=s.ephemeralOwner,
        num_children=s.numChildren,
        data_length=s.dataLength,
    )


def to_acl(acls: Sequence[Any]) -> tuple[Acl, ...]:
    return tuple(sorted(Acl(a.perms, a.id.scheme, a.id.id) for a in acls))


class _Walk:
    """The per-node walk for servers without multiRead: one async request per
    node, the walk continued from the completion callbacks."""

    def __init__(self, client: KazooClient, excludes: Sequence[str]) -> None:
        self.client = client
        self.excludes = tuple(excludes)
        self.lock = threading.Lock()
        self.pending = 0
        self.done = threading.Event()
        self.data: dict[str, tuple[bytes, Any]] = {}
        self.error: BaseException | None = None

    def _request(self, async_result: Any, path: str, on_value: Callable[[str, Any], None]) -> None:
        with self.lock:
            self.pending += 1
        async_result.rawlink(partial(self._complete, path, on_value))

    def _complete(self, path: str, on_value: Callable[[str, Any], None], result: Any) -> None:
        try:
            if result.successful():
                on_value(path, result.value)
            elif not isinstance(result.exception, NoNodeError):
                # A node deleted mid-walk is not an error; anything else is.
                self._fail(result.exception)
        except BaseException as exc:
            self._fail(exc)
        finally:
            with self.lock:
                self.pending -= 1
                if self.pending == 0:
                    self.done.set()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.done.set()

    def fetch(self, path: str) -> None:
        self._request(self.client.get_async(path), path, self._on_data)

    def _on_data(self, path: str, value: Any) -> None:
        data, stat = value
        self.data[path] = (data or b"", stat)
        if stat.numChildren > 0 and self.error is None:
            self._request(self.client.get_children_async(path), path, self._on_children)

    def _on_children(self, path: str, children: Any) -> None:
        for child in children:
            child_path = join(path, child)
            if not (self.excludes and matches_any(child_path, self.excludes)):
                self.fetch(child_path)


BATCH = 500  # operations per multiRead; responses stream back in order
IN_FLIGHT = 4  # multiRead batches outstanding at once

# Connection strings whose servers do not know multiRead (ZooKeeper 3.4/3.5).
_NO_MULTIREAD: set[str] = set()
_LOST = (ConnectionLoss, ConnectionClosedError)
T = TypeVar("T")


def _prefix(chroot: str, path: str) -> str:
    if not chroot:
        return path
    return chroot if path == "/" else chroot + path


def _raise_unless_nonode(result: Any, path: str) -> bool:
    """True when ``result`` is a usable answer, False for a node gone mid-walk."""
    if isinstance(result, NoNodeError):
        return False
    if isinstance(result, Exception):
        raise ZkReadError(f"reading {path!r} failed: {result!r}") from result
    return True


def connection_key(client: KazooClient) -> str:
    """The servers a client talks to, as one string (chroot left out)."""
    return ",".join(f"{host}:{port}" for host, port in sorted(client.hosts or ()))


@dataclass
class _TreeRead:
    """One read of the tree under ``root``, with the deadline and reconnects it had."""

    client: KazooClient
    root: str
    excludes: Sequence[str]
    progress: Callable[[int], None] | None
    timeout: float
    deadline: float = field(init=False)
    reconnects: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ZkReadError(f"reading {self.root!r} did not finish within {self.timeout:g}s")
        return left

    def await_session(self) -> None:
        """Wait for the session to be connected again; fail once it is lost for good."""
        while not self.client.connected:
            if self.client.state == KazooState.LOST:
                raise ZkReadError(f"reading {self.root!r} failed: the ZooKeeper session expired")
            if self.deadline - time.monotonic() <= 0:
                raise ZkReadError(
                    f"reading {self.root!r} failed: ZooKeeper was unreachable until the deadline"
                )
            time.sleep(0.05)

    def sync(self) -> int:
        """``sync`` the root (retrying over reconnects); the server's zxid then."""
        self.retrying(lambda: self.client.sync_async(self.root).get(timeout=self._left()))
        return int(self.client.last_zxid)

    def exists(self, path: str) -> bool:
        stat = self.retrying(lambda: self.client.exists_async(path).get(timeout=self._left()))
        return stat is not None

    def retrying(self, step: Callable[[], T]) -> T:
        """Run ``step``; after a lost connection, wait for the session, sync, run it again."""
        while True:
            try:
                return step()
            except SessionExpiredError as exc:
                raise ZkReadError(
                    f"reading {self.root!r} failed: the ZooKeeper session expired"
                ) from exc
            except _LOST:
                self.reconnects += 1
                self.await_session()
                try:
                    # A lagging follower catches up before it answers again.
                    self.client.sync_async(self.root).get(timeout=self._left())
                except _LOST:
                    continue

    def _multi(self, paths: Sequence[str], op: Callable[[str], Any]) -> list[Any]:
        """One operation per path as multiRead batches, a few in flight at a time."""
        chroot = self.client.chroot or ""
        results: list[Any] = []
        pending: deque[Any] = deque()
        for i in range(0, len(paths), BATCH):
            ops = [op(_prefix(chroot, p)) for p in paths[i : i + BATCH]]
            pending.append(multi_read_async(self.client, ops))
            if len(pending) >= IN_FLIGHT:
                results.extend(pending.popleft().get(timeout=self._left()))
        while pending:
            results.extend(pending.popleft().get(timeout=self._left()))
        return results

    def run(self) -> dict[str, tuple[bytes, Any]]:
        key = connection_key(self.client)
        if key not in _NO_MULTIREAD:
            try:
                return self.batched()
            except UnimplementedError:
                # 3.4/3.5 answer UNIMPLEMENTED and then close the connection: the
                # per-node walk below waits for the reconnect like any lost connection.
                _NO_MULTIREAD.add(key)
        return self.retrying(self.per_node)

    def batched(self) -> dict[str, tuple[bytes, Any]]:
        """Level by level: getData for a level, then getChildren where numChildren > 0."""
        excludes = self.excludes
        found: dict[str, tuple[bytes, Any]] = {}
        level = [self.root]
        while level:
            data = self.retrying(partial(self._multi, level, get_data_op))
            with_children: list[str] = []
            for path, result in zip(level, data, strict=True):
                if _raise_unless_nonode(result, path):
                    value, stat = result
                    found[path] = (value or b"", stat)
                    if stat.numChildren > 0:
                        with_children.append(path)
            if self.progress is not None:
                self.progress(len(found))
            level = []
            listing = self.retrying(partial(self._multi, with_children, get_children_op))
            for path, result in zip(with_children, listing, strict=True):
                if _raise_unless_nonode(result, path):
                    for child in sorted(result):
                        child_path = join(path, child)
                        if excludes and matches_any(child_path, excludes):
                            continue
                        level.append(child_path)
        return found

    def per_node(self) -> dict[str, tuple[bytes, Any]]:
        """One asynchronous request per node, for servers without multiRead."""
        walk = _Walk(self.client, self.excludes)
        walk.fetch(self.root)
        while not walk.done.wait(0.1):
            if self.progress is not None:
                self.progress(len(walk.data))
            self._left()
        if isinstance(walk.error, _LOST):
            raise walk.error  # the whole walk again, after the reconnect
        if walk.error is not None:
            raise ZkReadError(f"reading {self.root!r} failed: {walk.error!r}") from walk.error
        return walk.data


def read_acls(
    client: KazooClient, paths: Sequence[str], timeout: float
) -> dict[str, tuple[Acl, ...]]:
    """ACLs have no batched read: one pipelined getACL per node."""
    pending = [(path, client.get_acls_async(path)) for path in paths]
    acls: dict[str, tuple[Acl, ...]] = {}
    for path, async_result in pending:
        try:
            value, _stat = async_result.get(timeout=timeout)
        except NoNodeError:
            continue
        except (*_LOST, SessionExpiredError):
            raise
        except Exception as exc:
            raise ZkReadError(f"reading the ACL of {path!r} failed: {exc!r}") from exc
        acls[path] = to_acl(value)
    return acls


def read_acls_of(
    client: KazooClient, root: str, paths: Sequence[str], *, timeout: float
) -> dict[str, tuple[Acl, ...]]:
    """The ACLs of ``paths`` (nodes under ``root``), riding out a lost connection as
    :func:`read_tree` does: the reconnect is waited for and the ACLs read again.

    Nodes that are gone are left out. Raises :class:`ZkReadError` when the
    session is lost, ``timeout`` passes or ZooKeeper refuses a read.
    """
    read = _TreeRead(client, root, (), None, timeout)
    try:
        return read.retrying(lambda: read_acls(client, paths, read._left()))
    except KazooException as exc:
        raise ZkReadError(f"reading ACLs under {root!r} failed: {exc!r}") from exc
    except client.handler.timeout_exception as exc:
        raise ZkReadError(
            f"reading ACLs under {root!r} failed: ZooKeeper did not answer within {timeout:g}s"
        ) from exc


def read_tree(
    client: KazooClient,
    root: str,
    *,
    excludes: Sequence[str] = (),
    with_acl: bool = False,
    progress: Callable[[int], None] | None = None,
    timeout: float = 600.0,
) -> TreeState:
    """Read every znode under ``root`` (inclusive) into a :class:`TreeState`.

    Raises :class:`RootNotFoundError` when ``root`` does not exist and
    :class:`ZkReadError` when the walk cannot complete (the session lost,
    authorisation refused, the deadline passed): a partial tree is never
    returned. Nodes deleted while the walk runs are simply absent; a lost
    connection is waited out (see the module docs). The state carries the
    zxids the read started and ended at.
    """
    try:
        validate_path(root)
    except InvalidPathError as exc:
        raise RootNotFoundError(f"invalid root path: {exc}") from exc
    read = _TreeRead(client, root, excludes, progress, timeout)
    try:
        zxid_start = read.sync()
        if not read.exists(root):
            raise RootNotFoundError(f"root path {root!r} does not exist in ZooKeeper")
        found = read.run()
        acls = read.retrying(lambda: read_acls(client, list(found), timeout)) if with_acl else {}
        zxid_end = int(client.last_zxid)
    except NoNodeError as exc:  # the root itself, gone before the sync
        raise RootNotFoundError(f"root path {root!r} does not exist in ZooKeeper") from exc
    except KazooException as exc:
        raise ZkReadError(f"reading {root!r} failed: {exc!r}") from exc
    except client.handler.timeout_exception as exc:
        raise ZkReadError(
            f"reading {root!r} failed: ZooKeeper did not answer within {timeout:g}s"
        ) from exc
    if root not in found:
        raise RootNotFoundError(f"root path {root!r} was deleted while it was being read")
    nodes: dict[str, Znode] = {}
    for path in sorted(found):
        data, stat = found[path]
        nodes[path] = Znode(path, data, to_stat(stat), acls.get(path) if with_acl else None)
    return TreeState(root, nodes, zxid_start=zxid_start, zxid_end=zxid_end)
