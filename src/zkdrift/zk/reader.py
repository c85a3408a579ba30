"""Pipelined tree reader.

One session, many requests in flight. On ZooKeeper >= 3.6 the walk goes level
by level with batched ``multiRead`` requests (see :mod:`zkdrift.zk.protocol`):
``getData`` for every node of a level, then ``getChildren`` only where
``numChildren > 0``. Older servers get the same walk with one asynchronous
request per node, continued from the completion callbacks. Either way the
cost is bounded by throughput, not by one round trip per node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError, UnimplementedError

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


def _multi_read(
    client: KazooClient, paths: Sequence[str], op: Callable[[str], Any], timeout: float
) -> list[Any]:
    chroot = client.chroot or ""
    pending = [
        multi_read_async(client, [op(_prefix(chroot, p)) for p in paths[i : i + BATCH]])
        for i in range(0, len(paths), BATCH)
    ]
    results: list[Any] = []
    for async_result in pending:
        results.extend(async_result.get(timeout=timeout))
    return results


@dataclass(frozen=True)
class _TreeRead:
    """One read of the tree under ``root``: either walk, the same inputs."""

    client: KazooClient
    root: str
    excludes: Sequence[str]
    progress: Callable[[int], None] | None
    timeout: float

    def batched(self) -> dict[str, tuple[bytes, Any]]:
        """Level by level: getData for a level, then getChildren where numChildren > 0."""
        client, timeout, excludes = self.client, self.timeout, self.excludes
        found: dict[str, tuple[bytes, Any]] = {}
        level = [self.root]
        while level:
            with_children: list[str] = []
            for path, result in zip(
                level, _multi_read(client, level, get_data_op, timeout), strict=True
            ):
                if _raise_unless_nonode(result, path):
                    data, stat = result
                    found[path] = (data or b"", stat)
                    if stat.numChildren > 0:
                        with_children.append(path)
            if self.progress is not None:
                self.progress(len(found))
            level = []
            listing = _multi_read(client, with_children, get_children_op, timeout)
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
        deadline = time.monotonic() + self.timeout
        while not walk.done.wait(0.1):
            if self.progress is not None:
                self.progress(len(walk.data))
            if time.monotonic() > deadline:
                raise ZkReadError(f"reading {self.root!r} did not finish within {self.timeout:g}s")
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
        except Exception as exc:
            raise ZkReadError(f"reading the ACL of {path!r} failed: {exc!r}") from exc
        acls[path] = to_acl(value)
    return acls


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
    :class:`ZkReadError` when the walk cannot complete (connection loss,
    authorisation failure, timeout): a partial tree is never returned. Nodes
    deleted while the walk runs are simply absent.
    """
    try:
        validate_path(root)
    except InvalidPathError as exc:
        raise RootNotFoundError(f"invalid root path: {exc}") from exc
    try:
        if client.exists(root) is None:
            raise RootNotFoundError(f"root path {root!r} does not exist in ZooKeeper")
        read = _TreeRead(client, root, excludes, progress, timeout)
        try:
            found = read.batched()
        except UnimplementedError:
            found = read.per_node()
        acls = read_acls(client, list(found), timeout) if with_acl else {}
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
    return TreeState(root, nodes)
