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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress
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
from zkdrift.model import Acl, LiveNode, Stat, TreeState, Znode
from zkdrift.paths import InvalidPathError, join, matches_any, validate_path
from zkdrift.wire import WireNodes
from zkdrift.zk.protocol import ChildReads, DataReads, multi_read_async


class ZkReadError(ZkDriftError):
    """The live tree could not be read completely."""


def wire_stat(s: Sequence[int]) -> Stat:
    """A stat in ZooKeeper's wire order (see :data:`~zkdrift.zk.protocol.WireStat`)."""
    czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, length, children, pzxid = s
    return Stat(
        version=version,
        cversion=cversion,
        aversion=aversion,
        czxid=czxid,
        mzxid=mzxid,
        pzxid=pzxid,
        ctime=ctime,
        mtime=mtime,
        ephemeral_owner=owner,
        num_children=children,
        data_length=length,
    )


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


def _acls_of(read: _TreeRead, paths: Sequence[str]) -> dict[str, tuple[Acl, ...]]:
    return read_acls(read.client, paths, read._left())


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

    def _stream(
        self, paths: Sequence[str], request: Callable[[Sequence[str]], Any]
    ) -> Iterator[tuple[Sequence[str], Any]]:
        """Multi-read ``paths`` in batches, a few in flight; yields ``(batch, results)``
        in order. After a lost connection it waits for the session, syncs, and sends
        again from the first batch not yet yielded: nothing is yielded twice."""
        chroot = self.client.chroot or ""
        done = 0  # paths already yielded
        while done < len(paths):
            try:
                pending: deque[tuple[Sequence[str], Any]] = deque()
                sent = done
                while sent < len(paths) or pending:
                    while sent < len(paths) and len(pending) < IN_FLIGHT:
                        batch = paths[sent : sent + BATCH]
                        wire = [_prefix(chroot, p) for p in batch] if chroot else batch
                        pending.append((batch, multi_read_async(self.client, request(wire))))
                        sent += len(batch)
                    batch, answer = pending.popleft()
                    results = answer.get(timeout=self._left())
                    done += len(batch)
                    yield batch, results
            except SessionExpiredError as exc:
                raise ZkReadError(
                    f"reading {self.root!r} failed: the ZooKeeper session expired"
                ) from exc
            except _LOST:
                self.reconnects += 1
                self.await_session()
                self.sync()

    def batches(self) -> Iterator[Sequence[LiveNode]]:
        """The tree as batches of nodes, read level by level."""
        key = connection_key(self.client)
        if key not in _NO_MULTIREAD:
            stream = self.batched()
            try:
                first = next(stream, None)
            except UnimplementedError:
                # 3.4/3.5 answer UNIMPLEMENTED and then close the connection: the
                # per-node walk below waits for the reconnect like any lost connection.
                _NO_MULTIREAD.add(key)
            else:
                if first is not None:
                    yield first
                    yield from stream
                return
        found = self.retrying(self.per_node)
        paths = sorted(found)
        for i in range(0, len(paths), BATCH):
            yield [(p, found[p][0], tuple(found[p][1]), None) for p in paths[i : i + BATCH]]

    def batched(self) -> Iterator[WireNodes]:
        """Level by level: getData for a level, then getChildren where numChildren > 0.

        Memory holds one level's paths, the next level's, and the batches in flight.
        Each batch is yielded as the bytes ZooKeeper sent (:class:`WireNodes`):
        nodes are decoded by whoever needs them, not here.
        """
        excludes = self.excludes
        level: list[str] = [self.root]
        while level:
            with_children: list[str] = []
            for batch, answer in self._stream(level, DataReads):
                paths, starts, children = batch, answer.starts, answer.children
                if answer.failures:
                    for i, failure in answer.failures.items():
                        if failure is not None:
                            path = batch[i]
                            raise ZkReadError(f"reading {path!r} failed: {failure!r}") from failure
                    # Nodes deleted mid-walk are left out.
                    kept = [i for i in range(len(batch)) if i not in answer.failures]
                    paths = [batch[i] for i in kept]
                    starts = [starts[i] for i in kept]
                    children = [children[i] for i in kept]
                if paths:
                    yield WireNodes(paths, answer.buf, starts)
                    with_children.extend(compress(paths, children))
            level = []
            for batch, listing in self._stream(with_children, ChildReads):
                for path, children in zip(batch, listing, strict=True):
                    if children is None:
                        continue
                    if isinstance(children, Exception):
                        raise ZkReadError(
                            f"reading the children of {path!r} failed: {children!r}"
                        ) from children
                    prefix = "/" if path == "/" else path + "/"
                    for child in sorted(children):
                        child_path = prefix + child
                        if excludes and matches_any(child_path, excludes):
                            continue
                        level.append(child_path)

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


class TreeStream:
    """A live read of the tree under ``root`` as batches of :data:`~zkdrift.model.LiveNode`.

    Iterate it once. Afterwards :attr:`zxid_start` and :attr:`zxid_end` hold
    the zxids the read spanned and :attr:`read_seconds` the time spent reading
    (not the time the consumer spent between batches). Raises
    :class:`RootNotFoundError` when ``root`` does not exist and
    :class:`ZkReadError` when the walk cannot complete; a consumer writing
    what it is given in one transaction therefore never commits a partial
    tree. Nodes deleted while the walk runs are simply absent; a lost
    connection is waited out (see the module docs).
    """

    def __init__(
        self,
        client: KazooClient,
        root: str,
        *,
        excludes: Sequence[str] = (),
        with_acl: bool = False,
        progress: Callable[[int], None] | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.client = client
        self.root = root
        self.excludes = tuple(excludes)
        self.with_acl = with_acl
        self.progress = progress
        self.timeout = timeout
        self.zxid_start = 0
        self.zxid_end = 0
        self.read_seconds = 0.0
        self.count = 0

    def __iter__(self) -> Iterator[Sequence[LiveNode]]:
        batches = self._batches()
        clock = time.perf_counter
        while True:
            t0 = clock()
            try:
                batch = next(batches)
            except StopIteration:
                self.read_seconds += clock() - t0
                return
            self.read_seconds += clock() - t0
            yield batch

    def _batches(self) -> Iterator[Sequence[LiveNode]]:
        root, client = self.root, self.client
        try:
            validate_path(root)
        except InvalidPathError as exc:
            raise RootNotFoundError(f"invalid root path: {exc}") from exc
        read = _TreeRead(client, root, self.excludes, self.progress, self.timeout)
        seen_root = False
        try:
            self.zxid_start = read.sync()
            if not read.exists(root):
                raise RootNotFoundError(f"root path {root!r} does not exist in ZooKeeper")
            for batch in read.batches():
                if not seen_root:
                    seen_root = batch[0][0] == root
                    if not seen_root:
                        break
                if self.with_acl:
                    nodes = list(batch)
                    acls = read.retrying(partial(_acls_of, read, [node[0] for node in nodes]))
                    batch = [(p, d, s, acls.get(p)) for p, d, s, _ in nodes]
                self.count += len(batch)
                if self.progress is not None:
                    self.progress(self.count)
                yield batch
            self.zxid_end = int(client.last_zxid)
        except NoNodeError as exc:  # the root itself, gone before the sync
            raise RootNotFoundError(f"root path {root!r} does not exist in ZooKeeper") from exc
        except KazooException as exc:
            raise ZkReadError(f"reading {root!r} failed: {exc!r}") from exc
        except client.handler.timeout_exception as exc:
            raise ZkReadError(
                f"reading {root!r} failed: ZooKeeper did not answer within {self.timeout:g}s"
            ) from exc
        if not seen_root:
            raise RootNotFoundError(f"root path {root!r} was deleted while it was being read")


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

    The whole tree in memory: for large trees, iterate a :class:`TreeStream`.
    Raises as :class:`TreeStream` does: a partial tree is never returned. The
    state carries the zxids the read started and ended at.
    """
    stream = TreeStream(
        client, root, excludes=excludes, with_acl=with_acl, progress=progress, timeout=timeout
    )
    found = [node for batch in stream for node in batch]
    found.sort(key=lambda node: node[0])
    nodes = {
        path: Znode(path, data, wire_stat(stat), acl if with_acl else None)
        for path, data, stat, acl in found
    }
    return TreeState(root, nodes, zxid_start=stream.zxid_start, zxid_end=stream.zxid_end)
