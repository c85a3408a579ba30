"""Snapshots as a temporal table of node states.

A node state row is valid from the snapshot that first saw its content up
to (not including) the snapshot that saw it change or vanish. Writing a
snapshot therefore touches only what changed: it closes the rows of changed
and removed paths and opens rows for changed and added ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import tempfile
import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b, sha1, sha256
from itertools import accumulate, chain, pairwise
from typing import Any, Protocol, overload

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    Text,
    and_,
    func,
    insert,
    null,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from zkdrift.diff import NodeKey
from zkdrift.errors import UnknownSnapshotError
from zkdrift.model import (
    PATH_KEY_BYTES,
    Acl,
    LiveNode,
    Stat,
    TreeState,
    WireStat,
    Znode,
    wire_order,
)
from zkdrift.store.blobs import load_blobs, store_blob_keys
from zkdrift.store.bulk import (
    INSERT_CHUNK,
    by_path_digest,
    chunks,
    close_rows,
    not_indexed,
    ordered_rows,
    streamed_chunks,
)
from zkdrift.store.digests import (
    STATE_KEY_BYTES,
    STATE_STAT,
    VALUE_KEY_BYTES,
    Digests,
    DigestWorker,
)
from zkdrift.store.models import INLINE_MAX, NodeState, Snapshot, Tree, utcnow
from zkdrift.store.temporal import ConcurrentWriteError
from zkdrift.store.trees import lock_tree
from zkdrift.wire import WireNodes

_STAT = STATE_STAT
log = logging.getLogger(__name__)


def acl_to_json(acl: tuple[Acl, ...] | None) -> list[list[Any]] | None:
    return None if acl is None else [[a.perms, a.scheme, a.id] for a in acl]


def acl_from_json(value: list[list[Any]] | None) -> tuple[Acl, ...] | None:
    return None if value is None else tuple(Acl(int(p), str(s), str(i)) for p, s, i in value)


def acl_key(value: Any) -> frozenset[tuple[int, str, str]] | None:
    """A stored ACL as compared in a stream: the set of its entries (None: not read).

    ``value`` is the column as the driver returns it when read as text (see
    :func:`acl_text`): JSON text, or already decoded by drivers that decode JSON.
    """
    if isinstance(value, str):
        value = json.loads(value)
    if value is None:
        return None
    return frozenset((int(p), str(s), str(i)) for p, s, i in value)


def acl_text(column: Any) -> Any:
    """An ACL column read without the JSON type's decoding: most nodes have none, and
    decoding ``null`` a million times costs seconds."""
    return type_coerce(column, Text)


# Rows per query when a tree streams out of the store: memory holds one chunk.
STREAM_CHUNK = 5000


def state_digest(data_digest: str, stat: Stat, acl: tuple[Acl, ...] | None) -> str:
    """A digest of everything recorded for a node: equal digests, equal rows."""
    return wire_state_digest(data_digest, wire_order(stat), acl)


def wire_state_digest(data_digest: str, stat: WireStat, acl: tuple[Acl, ...] | None) -> str:
    """:func:`state_digest` of a stat in ZooKeeper's wire order."""
    return wire_state_key(data_digest, stat, acl).hex()


def wire_state_key(data_digest: str, stat: WireStat, acl: tuple[Acl, ...] | None) -> bytes:
    """:func:`wire_state_digest` as the bytes the ``state_digest`` column holds: the
    first 8 bytes of a BLAKE2b-128 (see :data:`~zkdrift.store.models.StateDigest`)."""
    czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, length, children, pzxid = stat
    h = blake2b(data_digest.encode(), digest_size=16)
    h.update(
        _STAT.pack(
            version, cversion, aversion, czxid, mzxid, pzxid, ctime, mtime, owner, children, length
        )
    )
    if acl is not None:
        h.update(repr(acl_to_json(acl)).encode())
    return h.digest()[:STATE_KEY_BYTES]


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_id: int
    tree: str
    node_count: int
    total_bytes: int
    added: int
    removed: int
    modified: int
    ephemeral: int
    read_seconds: float
    write_seconds: float
    fuzzy: bool = False
    # True when another snapshot, read after this one began and seeing later
    # changes, was recorded first: this one was not recorded, and the result
    # describes that newer snapshot instead.
    superseded: bool = False

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.modified

    def describe(self) -> str:
        return (
            f"snapshot {self.snapshot_id} of {self.tree}: {self.node_count:,} nodes,"
            f" {self.changed:,} changed since the last one"
            f" (+{self.added} -{self.removed} ~{self.modified})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "tree": self.tree,
            "nodes": self.node_count,
            "bytes": self.total_bytes,
            "changed": self.changed,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "ephemeral": self.ephemeral,
            "duration_seconds": round(self.read_seconds + self.write_seconds, 3),
            "read_seconds": round(self.read_seconds, 3),
            "write_seconds": round(self.write_seconds, 3),
            "fuzzy": self.fuzzy,
            "superseded": self.superseded,
        }


class LiveBatches(Protocol):
    """A live read as batches of nodes (:class:`zkdrift.zk.reader.TreeStream`): the
    zxids it spanned and the time it spent are known once it is exhausted."""

    zxid_start: int
    zxid_end: int
    read_seconds: float

    def __iter__(self) -> Iterator[Sequence[LiveNode]]: ...


@dataclass
class _StateBatches:
    """A :class:`TreeState` already in memory, as :class:`LiveBatches`."""

    state: TreeState
    read_seconds: float
    zxid_start: int = 0
    zxid_end: int = 0

    def __post_init__(self) -> None:
        self.zxid_start, self.zxid_end = self.state.zxid_start, self.state.zxid_end

    def __iter__(self) -> Iterator[list[LiveNode]]:
        batch: list[LiveNode] = []
        for path, node in self.state.nodes.items():
            stat = node.stat or Stat(data_length=len(node.data))
            batch.append((path, node.data, wire_order(stat), node.acl))
            if len(batch) >= CAPTURE_CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch


def write_snapshot(
    session: Session,
    tree: Tree,
    state: TreeState,
    *,
    started_at: dt.datetime,
    read_seconds: float,
    source: str = "cli",
) -> SnapshotResult:
    """Record ``state`` as a new snapshot of ``tree`` in the session's transaction.

    Writers of one tree take turns (:func:`~zkdrift.store.trees.lock_tree`).
    When the snapshot recorded last was read after this one began and saw
    later zxids, ``state`` is older than what the history already holds: it
    is not recorded, and the result describes that newer snapshot
    (``superseded``), so history never steps back in time.
    """
    lock_tree(session, tree)
    latest = session.scalar(
        select(Snapshot).where(Snapshot.tree_id == tree.id).order_by(Snapshot.id.desc()).limit(1)
    )
    if (
        latest is not None
        and state.zxid_end
        and latest.zxid_end
        and latest.started_at >= started_at
        and latest.zxid_end > state.zxid_end
    ):
        return _result(tree, latest, read_seconds, superseded=True)
    with_acl = any(node.acl is not None for node in state.nodes.values())
    return capture_snapshot(
        session,
        tree,
        _StateBatches(state, read_seconds),
        started_at=started_at,
        with_acl=with_acl,
        source=source,
    )


def capture_snapshot(
    session: Session,
    tree: Tree,
    live: LiveBatches,
    *,
    started_at: dt.datetime,
    with_acl: bool,
    source: str = "cli",
) -> SnapshotResult:
    """Record what ``live`` yields as a new snapshot of ``tree``, batch by batch, in the
    session's transaction: memory holds one chunk of nodes, never the tree.

    The tree's lock (:func:`~zkdrift.store.trees.lock_tree`) is taken first and
    held while ``live`` is read, so the open rows each chunk is compared with
    stay what they were: another writer of this tree waits, and then reads a
    tree at least as new. Each chunk is compared with the open rows of its
    paths (by path digest); only changed and added nodes are written, in
    bulk. Open rows no chunk matched are the removed paths, closed at the end.
    An exception from ``live`` (a failed read) leaves the transaction to be
    rolled back: nothing of the capture remains.
    """
    t0 = time.perf_counter()
    lock_tree(session, tree)
    snap = Snapshot(
        tree_id=tree.id,
        started_at=started_at,
        finished_at=started_at,
        node_count=0,
        total_bytes=0,
        with_acl=with_acl,
        source=source,
    )
    session.add(snap)
    session.flush()
    write = _CaptureWrite(session, tree.id, snap.id, with_acl)
    try:
        # The read is under way while the open rows are read: the reader thread goes
        # on until its chunks fill the room it has, more room while the rows are read.
        reading = 0 < write.open_before <= OPEN_ROWS_IN_MEMORY_MAX
        # A tree that was large last time gets its digest worker from the start
        # (ACLs come as decoded nodes, digested here).
        large = write.open_before > DIGEST_WORKER_AFTER and not with_acl
        prefetch = 2 * PREFETCH if reading else PREFETCH
        # Without open rows in memory every node is written, or looked up: decoded
        # by the thread that collects the digests, not by this one.
        ready = _prepared(live, prefetch, worker_first=large, decoded=not reading)
        with contextlib.closing(ready) as chunks:
            first = next(chunks, None)
            write.read_open_rows()
            for chunk in chunks if first is None else chain([first], chunks):
                write.put(chunk)
        write.finish()
    finally:
        write.close()

    snap.node_count, snap.total_bytes = write.nodes, write.bytes
    snap.added, snap.removed, snap.modified = write.added, write.removed, write.modified
    snap.ephemeral_count = write.ephemeral
    snap.max_mzxid = write.max_mzxid
    snap.zxid_start = live.zxid_start or None
    snap.zxid_end = live.zxid_end or None
    snap.fuzzy = bool(live.zxid_start) and write.max_zxid > live.zxid_start
    snap.read_seconds = live.read_seconds
    snap.finished_at = utcnow()
    snap.write_seconds = max(time.perf_counter() - t0 - live.read_seconds, 0.0)
    session.flush()
    return _result(tree, snap, live.read_seconds)


def _json_value(value: Any) -> Any:
    """A JSON column as the driver returned it (text, or already parsed)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


_NODE_COLUMNS = (
    "tree_id, path_digest, path, state_digest, data_digest, data, data_length, version,"
    " cversion, aversion, czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner, num_children,"
    " acl, valid_from"
)


@dataclass(frozen=True)
class _Statements:
    """The capture's hot statements, sent to the driver as they are: a million rows
    skip SQLAlchemy's per-row parameter processing. Digests go as bytes and ACLs
    as the JSON text the ``JSON`` column type writes."""

    mark: str
    insert_node: str

    @classmethod
    def of(cls, paramstyle: str) -> _Statements:
        mark = "?" if paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * 19)
        return cls(mark, f"INSERT INTO node_states ({_NODE_COLUMNS}) VALUES ({marks})")


# SQLite's insert of a node row. Python's sqlite3 passes a parameter of type int,
# float, str or bytearray straight through, but looks every other one (bytes,
# None) up in its adapter registry: a tuple built, a dict and two attributes
# searched, 8 times a row. So the three digests go as one blob, cut apart here;
# the value as a bytearray; NULLs as the values they stand for (see
# NodeState.czxid) or an empty ACL text; and the stat as the reader gave it, in
# ZooKeeper's order from ?8 (czxid, mzxid, ctime, mtime, version, cversion,
# aversion, ephemeralOwner, dataLength, numChildren, pzxid): about twice as
# fast to bind. ?16, the stat's dataLength, goes unused: the row keeps the
# length of the value it holds.
_D1 = PATH_KEY_BYTES
_D2 = _D1 + STATE_KEY_BYTES
_SQLITE_INSERT_NODE = (
    f"INSERT INTO node_states ({_NODE_COLUMNS}) VALUES (?1, substr(?2, 1, {_D1}), ?3,"
    f" substr(?2, {_D1 + 1}, {STATE_KEY_BYTES}), substr(?2, {_D2 + 1}), ?4, ?5, ?12, ?13,"
    " ?14, NULLIF(?8, ?9), ?9, NULLIF(?18, ?8), NULLIF(?10, ?11), ?11, ?15, ?17,"
    " NULLIF(?6, ''), ?7)"
)


# A node ready for the store: (path, data, stat, path digest, value digest,
# state digest, ACL as JSON), the digests as bytes.
_Node = tuple[str, bytes, WireStat, bytes, bytes, bytes, Any]
_DONE = object()


@dataclass(frozen=True)
class _Chunk:
    """Nodes ready for the store, with what the capture counts of them: their path
    and state digests end to end (the open-row match takes them as arrays), their
    value bytes, ephemeral nodes, and the largest modification and any zxid."""

    nodes: Sequence[_Node]
    path_keys: bytes
    state_keys: bytes
    total: int
    ephemeral: int
    max_mzxid: int
    max_zxid: int


def _prepare(chunk: Sequence[LiveNode]) -> _Chunk:
    """The digests of a chunk of nodes: :func:`~zkdrift.model.path_key`,
    :func:`~zkdrift.model.value_key` and :func:`wire_state_key`, inlined (a million
    nodes make every call and attribute lookup here count)."""
    prepared: list[_Node] = []
    append, pack = prepared.append, _STAT.pack
    path_keys: list[bytes] = []
    state_keys: list[bytes] = []
    size = PATH_KEY_BYTES
    total = ephemeral = max_mzxid = max_zxid = 0
    for path, data, stat, acl in chunk:
        value = sha256(data).digest()  # finished once: its hex is value.hex()
        czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, length, children, pzxid = (
            stat
        )
        h = blake2b(value.hex().encode(), digest_size=16)
        h.update(
            pack(
                version,
                cversion,
                aversion,
                czxid,
                mzxid,
                pzxid,
                ctime,
                mtime,
                owner,
                children,
                length,
            )
        )
        acl_json = None
        if acl is not None:
            acl_json = acl_to_json(acl)
            h.update(repr(acl_json).encode())
        path_key = sha1(path.encode(), usedforsecurity=False).digest()[:size]
        state_key = h.digest()[:STATE_KEY_BYTES]
        path_keys.append(path_key)
        state_keys.append(state_key)
        append((path, data, stat, path_key, value, state_key, acl_json))
        total += len(data)
        if owner:
            ephemeral += 1
        if mzxid > max_mzxid:
            max_mzxid = mzxid
        if pzxid > max_zxid:
            max_zxid = pzxid
        if czxid > max_zxid:
            max_zxid = czxid
    return _Chunk(
        prepared,
        b"".join(path_keys),
        b"".join(state_keys),
        total,
        ephemeral,
        max_mzxid,
        max(max_zxid, max_mzxid),
    )


class _WireChunkNodes(Sequence[_Node]):
    """The nodes of a chunk digested by the worker: batches still as ZooKeeper sent
    them and the digests end to end. A node is decoded when it is asked for, that
    is when it is written."""

    def __init__(self, parts: Sequence[WireNodes], done: Sequence[Digests]) -> None:
        self.parts = parts
        self.ends = list(accumulate(len(part) for part in parts))
        self.path_keys = b"".join(d.path_keys for d in done)
        self.state_keys = b"".join(d.state_keys for d in done)
        self.value_keys = b"".join(d.value_keys for d in done)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    @overload
    def __getitem__(self, index: int) -> _Node: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[_Node]: ...

    def __getitem__(self, index: int | slice) -> _Node | Sequence[_Node]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        part = bisect_right(self.ends, index)
        if not 0 <= index < len(self):
            raise IndexError(index)
        path, data, stat, _acl = self.parts[part][index - (self.ends[part - 1] if part else 0)]
        p, s, v = index * PATH_KEY_BYTES, index * STATE_KEY_BYTES, index * VALUE_KEY_BYTES
        return (
            path,
            data,
            stat,
            self.path_keys[p : p + PATH_KEY_BYTES],
            self.value_keys[v : v + VALUE_KEY_BYTES],
            self.state_keys[s : s + STATE_KEY_BYTES],
            None,
        )


def _wire_chunk(parts: Sequence[WireNodes], done: Sequence[Digests], decoded: bool) -> _Chunk:
    """A chunk of these batches and their digests; with ``decoded``, its nodes decoded
    here (every one is going to be written), not by the writer."""
    nodes = _WireChunkNodes(parts, done)
    return _Chunk(
        list(nodes) if decoded else nodes,
        nodes.path_keys,
        nodes.state_keys,
        sum(d.total for d in done),
        sum(d.ephemeral for d in done),
        max(d.max_mzxid for d in done),
        max(d.max_zxid for d in done),
    )


@dataclass(frozen=True)
class _End:
    """The read is over: how it ended, None when it ended well."""

    error: BaseException | None


class _Digesting:
    """Batches digested by a :class:`DigestWorker`: the reader thread sends them, a
    collector thread of this one receives the digests in the same order and offers
    the chunks they make. Batches that are not :class:`WireNodes` are digested here
    and take their turn among the others."""

    def __init__(self, offer: Callable[[Any], bool], decoded: bool) -> None:
        self.decoded = decoded
        self.worker = DigestWorker()
        self.inflight: queue.Queue[Any] = queue.Queue()
        # Batches sent and not yet answered: what memory holds of them is bounded by
        # this, not by how much the pipes hold.
        self.room = threading.BoundedSemaphore(WORKER_IN_FLIGHT)
        self.stopped = False
        self.collector = threading.Thread(
            target=self._collect, args=(offer,), name="zkdrift-capture-digests", daemon=True
        )
        self.collector.start()

    def submit(self, batch: Sequence[LiveNode]) -> bool:
        """Send ``batch`` to be digested; False once the capture stopped."""
        if isinstance(batch, WireNodes):
            while not self.room.acquire(timeout=0.1):
                if self.stopped:
                    return False
            self.inflight.put(batch)
            self.worker.send(batch)
        else:
            self.inflight.put(_prepare(batch))
        return True

    def finish(self, error: BaseException | None) -> None:
        self.inflight.put(_End(error))
        self.worker.end_input()

    def _collect(self, offer: Callable[[Any], bool]) -> None:
        parts: list[WireNodes] = []
        done: list[Digests] = []
        count = 0
        try:
            while True:
                item = self.inflight.get()
                if isinstance(item, WireNodes):
                    parts.append(item)
                    done.append(self.worker.receive())
                    self.room.release()
                    count += len(item)
                    if count < CAPTURE_CHUNK:
                        continue
                if parts:
                    if not offer(_wire_chunk(parts, done, self.decoded)):
                        return
                    parts, done, count = [], [], 0
                if isinstance(item, _Chunk) and not offer(item):
                    return
                if isinstance(item, _End):
                    offer(_DONE if item.error is None else item.error)
                    return
        except BaseException as exc:
            offer(exc)

    def stop(self, grace: float) -> None:
        """Stop the worker; when ``grace`` is 0 at once, so that a send or a receive
        waiting on it returns."""
        self.stopped = True
        self.worker.close(grace)


def _prepared(
    live: LiveBatches, prefetch: int = 0, *, worker_first: bool = False, decoded: bool = False
) -> Generator[_Chunk, None, None]:
    """``live`` in chunks of :data:`CAPTURE_CHUNK` nodes with their digests, read and
    digested by a thread of its own while the caller writes the chunks before:
    the database's work (which releases the GIL) overlaps ZooKeeper's and the
    hashing. Past :data:`DIGEST_WORKER_AFTER` nodes (from the first, with
    ``worker_first``), the digests are worked out by a digest worker, a process
    on another core (:mod:`zkdrift.store.digests`); with ``decoded`` (every node
    is to be written), the nodes come decoded too, while the caller writes.
    At most ``prefetch`` chunks (:data:`PREFETCH` by default) wait, so memory
    stays bounded; an error in the read is raised here, and a caller that stops
    early stops it."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=prefetch or PREFETCH)
    stop = threading.Event()
    guard = threading.Lock()
    started: list[_Digesting] = []

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def digesting() -> _Digesting | None:
        with guard:
            if stop.is_set():
                return None
            try:
                started.append(_Digesting(offer, decoded))
            except OSError as exc:  # no process to be had: digested here, as before
                log.warning("digests worked out in this process: no digest worker (%s)", exc)
                return None
            return started[-1]

    def produce() -> None:
        worker: _Digesting | None = None
        error: BaseException | None = None
        try:
            pending: list[LiveNode] = []
            read = 0
            tried = worker_first  # to start a worker
            if worker_first:
                worker = digesting()
                if worker is None and stop.is_set():
                    return
            for batch in live:
                if stop.is_set():
                    return
                if not tried and isinstance(batch, WireNodes):
                    read += len(batch)
                    if read > DIGEST_WORKER_AFTER:
                        tried = True
                        if pending and not offer(_prepare(pending)):
                            return
                        pending = []
                        worker = digesting()
                        if worker is None and stop.is_set():
                            return
                if worker is not None:
                    if not worker.submit(batch):
                        return
                    continue
                pending.extend(batch)
                if len(pending) >= CAPTURE_CHUNK:
                    if not offer(_prepare(pending)):
                        return
                    pending = []
            if worker is None:
                if pending and not offer(_prepare(pending)):
                    return
                offer(_DONE)
        except BaseException as exc:
            error = exc
            if worker is None:
                offer(exc)
        finally:
            if worker is not None:
                worker.finish(error)

    reader = threading.Thread(target=produce, name="zkdrift-capture-read", daemon=True)
    reader.start()
    grace = 0.0
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                grace = 5.0  # every answer is in: the worker is on its way out
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        with guard:
            stop.set()
        for worker in started:
            worker.stop(grace)
        reader.join()
        for worker in started:
            worker.collector.join()


# Chunks read ahead of the one being written (twice as many when the open rows are
# read first: the read goes on meanwhile).
PREFETCH = 4
# Bytes of the unchanged-ids spool held in memory before it goes to a file.
UNCHANGED_IN_MEMORY = 1 << 20
# Nodes digested in the capture's own process before a digest worker takes over: a
# process of its own costs about as much to start as this many nodes to digest.
DIGEST_WORKER_AFTER = 20_000
# Batches sent to the digest worker and not yet answered.
WORKER_IN_FLIGHT = 8
# Nodes compared with the open rows and written per round trip.
CAPTURE_CHUNK = 2000
# SQLite's page cache while a capture runs, in KiB.
SQLITE_CACHE_KIB = 8 * 1024
# ... or, when larger, this many bytes per open row (the path index with its
# interior pages and slack), up to SQLITE_CACHE_MAX_KIB.
INDEX_BYTES_PER_ROW = 48
SQLITE_CACHE_MAX_KIB = 128 * 1024
# Path digests per IN (...) lookup of open rows: a chunk's in one query.
LOOKUP_CHUNK = CAPTURE_CHUNK


# Open rows matched in memory (:class:`_OpenRows`) up to this many: 21 bytes each.
# Past it, each chunk looks its open rows up in the database.
OPEN_ROWS_IN_MEMORY_MAX = 4_000_000
# The open rows are read in this many ranges of path digests (a range's rows are
# held twice while it is read).
OPEN_ROWS_RANGES = 16


class _OpenRows:
    """A tree's open rows in memory, sorted by path digest: each digest as two
    integers (its first 8 bytes and the last 4), the state digests as an array,
    and which rows a chunk matched: 21 bytes a row.

    A chunk's nodes are matched all at once by binary search over integers
    (numpy's ``searchsorted``), not looked up in the path index one by one: at a
    million rows the lookups were the largest cost of an unchanged re-snapshot.
    The rows are read once, range by range of path digests, before the first
    chunk; the tree's lock keeps them what they were until the capture ends.
    Their ids are not held: the few rows a capture closes are looked up by path
    digest when they are closed.
    """

    def __init__(self, path_keys: bytes, state_keys: bytes) -> None:
        import numpy as np

        self.high, self.low = _split_keys(path_keys)
        self.state_keys = np.frombuffer(state_keys, dtype=_STATE_DTYPE)
        high, low = self.high, self.low
        # Read in digest order already, as a rule: sorted only when they are not.
        ascending = (high[1:] > high[:-1]) | ((high[1:] == high[:-1]) & (low[1:] >= low[:-1]))
        if not bool(ascending.all()):
            order = np.lexsort((low, high))
            self.high, self.low = high[order], low[order]
            self.state_keys = self.state_keys[order]
        self.matched = np.zeros(len(self.high), dtype=bool)

    def __len__(self) -> int:
        return len(self.high)

    @classmethod
    def read(cls, capture: _CaptureWrite) -> _OpenRows | None:
        """The open rows of the capture's tree, or None when a digest is not of the
        usual size (the capture then looks rows up in the database)."""
        bounds: list[bytes | None] = [None]
        bounds += [bytes([i * 256 // OPEN_ROWS_RANGES]) for i in range(1, OPEN_ROWS_RANGES)]
        bounds.append(None)
        path_keys: list[bytes] = []
        state_keys: list[bytes] = []
        for low, high in pairwise(bounds):
            part = capture.open_rows_between(low, high)
            if part is None:
                return None
            path_keys.append(part[0])
            state_keys.append(part[1])
        return cls(b"".join(path_keys), b"".join(state_keys))

    def match(self, chunk: _Chunk) -> tuple[list[int], list[bool]]:
        """The positions in ``chunk`` of nodes whose state differs from their open row
        or that have none, and for each whether it has one. Every open row a node
        of the chunk has is marked matched."""
        import numpy as np

        high, low = _split_keys(chunk.path_keys)
        if not len(self.high):
            return list(range(len(high))), [False] * len(high)
        # In digest order, the binary searches walk the rows forwards.
        order = np.argsort(high, kind="stable")
        sorted_high = high[order]
        first = np.empty_like(order)
        count = np.empty_like(order)
        first[order] = np.searchsorted(self.high, sorted_high, side="left")
        count[order] = np.searchsorted(self.high, sorted_high, side="right") - first[order]
        at = np.minimum(first, len(self.high) - 1)
        hit = (count == 1) & (self.low[at] == low)
        # Digests alike in their first 8 bytes (about one pair in 2^64/n): the last 4
        # tell them apart.
        for i in np.flatnonzero(count > 1).tolist():
            start = int(first[i])
            same = np.flatnonzero(self.low[start : start + int(count[i])] == low[i])
            if len(same):
                at[i], hit[i] = start + int(same[0]), True
        self.matched[at[hit]] = True
        states = np.frombuffer(chunk.state_keys, dtype=_STATE_DTYPE)
        changed = np.flatnonzero(~(hit & (self.state_keys[at] == states)))
        return changed.tolist(), hit[changed].tolist()

    def unmatched(self) -> list[bytes]:
        """Path digests of the open rows no chunk matched: the removed paths'."""
        import numpy as np

        gone = ~self.matched
        high = self.high[gone].astype(">u8").tobytes()
        low = self.low[gone].astype(">u4").tobytes()
        return [
            high[8 * i : 8 * i + 8] + low[4 * i : 4 * i + 4]
            for i in range(int(np.count_nonzero(gone)))
        ]


# A state digest as one integer (compared for equality only).
_STATE_DTYPE = "<u8"
assert STATE_KEY_BYTES == 8, "_STATE_DTYPE holds 8 bytes"
assert PATH_KEY_BYTES == 12, "_split_keys splits 8 + 4 bytes"


def _split_keys(path_keys: bytes) -> tuple[Any, Any]:
    """Path digests end to end as two arrays that sort as the digests do: their first
    8 bytes and their last 4, as unsigned big-endian integers."""
    import numpy as np

    rows = np.frombuffer(path_keys, dtype=np.uint8).reshape(-1, PATH_KEY_BYTES)
    high = np.ascontiguousarray(rows[:, :8]).view(">u8").ravel().astype(np.uint64)
    low = np.ascontiguousarray(rows[:, 8:]).view(">u4").ravel().astype(np.uint32)
    return high, low


class _CaptureWrite:
    """The writes of one capture, chunk by chunk, with the counts it ends with."""

    def __init__(self, session: Session, tree_id: int, snapshot_id: int, with_acl: bool) -> None:
        self.session = session
        self.tree_id = tree_id
        self.snapshot_id = snapshot_id
        self.with_acl = with_acl
        self.open_before = int(
            session.scalar(
                select(func.count())
                .select_from(NodeState)
                .where(NodeState.tree_id == tree_id, NodeState.valid_to.is_(None))
            )
            or 0
        )
        self.connection = session.connection()
        self.sql = _Statements.of(self.connection.dialect.paramstyle)
        # MySQL/MariaDB: rows as one statement of hex literals, built here; pymysql
        # would escape every value of every row in Python.
        self.literal = self.connection.dialect.name in ("mysql", "mariadb")
        self.cache_before: Any = None
        self.sqlite = self.connection.dialect.name == "sqlite"
        self.nodes = self.bytes = self.added = self.modified = self.removed = 0
        self.ephemeral = self.max_mzxid = self.max_zxid = 0
        self.matched = 0
        # The open rows in memory, or None: looked up chunk by chunk in the database.
        self.open_rows: _OpenRows | None = None
        self.cache_kib = 0
        self.written = 0  # rows inserted
        if self.sqlite:
            self.cache_before = self.connection.exec_driver_sql("PRAGMA cache_size").scalar()
        # Without the open rows in memory, the ids of those found unchanged are
        # spooled (to disk past UNCHANGED_IN_MEMORY): after the last chunk they tell
        # the open rows of removed paths from those still live.
        self.unchanged = tempfile.SpooledTemporaryFile(UNCHANGED_IN_MEMORY)  # noqa: SIM115

    def read_open_rows(self) -> None:
        """Read the tree's open rows into memory, when there are not too many; call it
        once, before the first chunk is put."""
        if 0 < self.open_before <= OPEN_ROWS_IN_MEMORY_MAX:
            self.open_rows = _OpenRows.read(self)
        if self.sqlite:
            self._make_room()

    def _make_room(self) -> None:
        """Size SQLite's page cache for the path index pages the capture touches.

        The path index is written at random, and read at random when open rows
        are looked up in it. With SQLite's default 2 MB cache, a dirty page
        pushed out mid-transaction goes to the write-ahead log, and again each
        time it is changed after: a first snapshot of a million nodes wrote the
        log for 11 of its 26 seconds. Looked up, the open rows' part of the index
        gets room too: at a million nodes a lookup took 4.1 us with 8 MiB, 3.1 us
        with the index in the cache. The cache grows with the rows looked up and
        written (about 48 bytes a row in the index), doubling from
        SQLITE_CACHE_KIB up to SQLITE_CACHE_MAX_KIB: memory follows the tree
        only within those bounds.
        """
        looked_up = 0 if self.open_rows is not None else self.open_before
        wanted = (looked_up + self.written) * INDEX_BYTES_PER_ROW // 1024
        if self.cache_kib >= SQLITE_CACHE_MAX_KIB or (self.cache_kib and wanted <= self.cache_kib):
            return
        self.cache_kib = min(
            max(SQLITE_CACHE_KIB, wanted, 2 * self.cache_kib), SQLITE_CACHE_MAX_KIB
        )
        self.connection.exec_driver_sql(f"PRAGMA cache_size = -{self.cache_kib}")

    def open_rows_between(
        self, low: bytes | None, high: bytes | None
    ) -> tuple[bytes, bytes] | None:
        """The open rows with path digests from ``low`` up to ``high`` (open ends for
        None): their path and state digests end to end; None when a digest is not of
        the usual size."""
        mark = self.sql.mark
        where = f"tree_id = {mark} AND valid_to IS NULL"
        params: list[Any] = [self.tree_id]
        if low is not None:
            where += f" AND path_digest >= {mark}"
            params.append(low)
        if high is not None:
            where += f" AND path_digest < {mark}"
            params.append(high)
        if self.sqlite:
            # Each column as one blob: one row for the whole range (see
            # _open_rows_packed), every digest's size told by the shortest and longest.
            paths, states, count, *sizes = self._query(
                "SELECT CAST(group_concat(path_digest, '') AS BLOB),"
                " CAST(group_concat(state_digest, '') AS BLOB), count(*),"
                " min(length(path_digest)), max(length(path_digest)),"
                " min(length(state_digest)), max(length(state_digest))"
                f" FROM node_states WHERE {where}",
                params,
            )[0]
            if not count:
                return b"", b""
            if sizes != [PATH_KEY_BYTES, PATH_KEY_BYTES, STATE_KEY_BYTES, STATE_KEY_BYTES]:
                return None
            return bytes(paths), bytes(states)
        found = self._query(
            f"SELECT path_digest, state_digest FROM node_states WHERE {where} ORDER BY path_digest",
            params,
        )
        if any(len(pd) != PATH_KEY_BYTES or len(sd) != STATE_KEY_BYTES for pd, sd in found):
            return None
        return b"".join([bytes(pd) for pd, _sd in found]), b"".join(
            [bytes(sd) for _pd, sd in found]
        )

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Rows of a lookup straight from the driver's cursor (no row objects)."""
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _open_rows(self, keys: list[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """The open rows of these path digests: (id, state digest), from the path index."""
        found: dict[bytes, tuple[int, bytes]] = {}
        if not self.open_before:
            return found
        mark = self.sql.mark
        # In digest order: SQLite builds the IN list's index by appending, and the
        # seeks walk the path index forwards (about 2.0 us a key instead of 2.3).
        for part in chunks(sorted(keys), LOOKUP_CHUNK):
            if self.sqlite and self._open_rows_packed(part, found):
                continue
            if self.literal:
                listed = ",".join([f"X'{key.hex()}'" for key in part])
                params: tuple[Any, ...] = (self.tree_id,)
            else:
                listed, params = ", ".join([mark] * len(part)), (self.tree_id, *part)
            rows = self._query(
                "SELECT path_digest, id, state_digest FROM node_states"
                f" WHERE tree_id = {mark} AND path_digest IN ({listed})"
                " AND valid_to IS NULL",
                params,
            )
            # Digests come back as bytes from every driver used (sqlite3, pymysql, psycopg).
            found.update({pd: (row_id, sd) for pd, row_id, sd in rows})
        return found

    def _open_rows_packed(self, keys: list[bytes], found: dict[bytes, tuple[int, bytes]]) -> bool:
        """:meth:`_open_rows` of one chunk on SQLite as a single row: every path and
        state digest in one blob, the ids as one text. Python's sqlite3 lets go of
        the GIL and takes it back for every row it steps to; while the reader thread
        runs Python, each take back can wait out a switch interval, and a lookup of
        row after row took several times its CPU time. One row, one wait. False
        (nothing added) when a digest is not of the usual size: the caller then
        reads the rows one by one."""
        width = PATH_KEY_BYTES + STATE_KEY_BYTES
        row = self._query(
            "SELECT CAST(group_concat(path_digest || state_digest, '') AS BLOB),"
            " group_concat(id), count(*),"
            f" sum(length(path_digest) = {PATH_KEY_BYTES}"
            f" AND length(state_digest) = {STATE_KEY_BYTES})"
            " FROM node_states WHERE tree_id = ? AND path_digest IN"
            f" ({', '.join(['?'] * len(keys))}) AND valid_to IS NULL",
            (self.tree_id, *keys),
        )[0]
        packed, ids, count, usual = row
        if not count:
            return True
        if usual != count or len(packed) != count * width:
            return False
        at = 0
        for row_id in ids.split(","):
            found[packed[at : at + PATH_KEY_BYTES]] = (
                int(row_id),
                packed[at + PATH_KEY_BYTES : at + width],
            )
            at += width
        return True

    def _contents(self, ids: list[int]) -> dict[int, tuple[bytes, Any]]:
        """Value digest and ACL of open rows whose state changed, by id."""
        found: dict[int, tuple[bytes, Any]] = {}
        mark = self.sql.mark
        for part in chunks(ids, LOOKUP_CHUNK):
            rows = self._query(
                "SELECT id, data_digest, acl FROM node_states"
                f" WHERE id IN ({', '.join([mark] * len(part))})",
                part,
            )
            for row_id, dd, acl in rows:
                found[row_id] = (bytes(dd), acl)
        return found

    def _ids(self, keys: list[bytes]) -> list[int]:
        """The ids of the open rows of these path digests, which must all have one."""
        found = self._open_rows(keys)
        if len(found) != len(set(keys)):
            raise ConcurrentWriteError(
                "another writer changed the node_states of this tree while it was being"
                f" written ({len(keys) - len(found)} open rows went away); nothing was"
                " written, run it again"
            )
        return [found[key][0] for key in keys]

    def _changes(self, chunk: _Chunk) -> list[tuple[_Node, int]]:
        """The chunk's nodes whose state differs from their open row, or that have
        none, with that row's id (-1 for none). Open rows found unchanged count as
        matched, and without the open rows in memory their ids are spooled."""
        nodes = chunk.nodes
        if self.open_rows is not None:
            positions, replaced = self.open_rows.match(chunk)
            changed = [nodes[i] for i in positions]
            pairs = list(zip(changed, replaced, strict=True))
            ids = iter(self._ids([node[3] for node, old in pairs if old]))
            return [(node, next(ids) if old else -1) for node, old in pairs]
        if not self.open_before:
            return [(node, -1) for node in nodes]
        open_rows = self._open_rows([node[3] for node in nodes])
        unchanged = array("q")
        changes: list[tuple[_Node, int]] = []
        for node in nodes:
            row = open_rows.get(node[3])
            if row is None:
                changes.append((node, -1))
            elif row[1] == node[5]:
                unchanged.append(row[0])
            else:
                changes.append((node, row[0]))
        self.matched += len(open_rows)
        unchanged.tofile(self.unchanged)
        return changes

    def put(self, chunk: _Chunk) -> None:
        self.nodes += len(chunk.nodes)
        self.bytes += chunk.total
        self.ephemeral += chunk.ephemeral
        self.max_mzxid = max(self.max_mzxid, chunk.max_mzxid)
        self.max_zxid = max(self.max_zxid, chunk.max_zxid)
        changes = self._changes(chunk)
        if not changes:
            return
        rows: list[tuple[Any, ...]] = []
        values: dict[bytes, bytes] = {}
        close: list[int] = []
        replaced: list[tuple[int, bytes, Any]] = []  # (open row id, value digest, acl)
        with_acl, tree_id, sid = self.with_acl, self.tree_id, self.snapshot_id
        sqlite = self.sqlite
        for (path, data, stat, pd, dd, sd, acl_json), previous in changes:
            czxid, mzxid, ctime, mtime, version, cversion, aversion, owner = stat[:8]
            children, pzxid = stat[9], stat[10]
            if previous >= 0:
                close.append(previous)
                replaced.append((previous, dd, acl_json))
            else:
                self.added += 1
            inline = len(data) <= INLINE_MAX
            acl_text = None if acl_json is None else json.dumps(acl_json)
            if sqlite:
                value = bytearray(data) if inline else None
                rows.append(
                    (tree_id, pd + sd + dd, path, value, len(data), acl_text or "", sid, *stat)
                )
            else:
                rows.append(
                    (
                        tree_id,
                        pd,
                        path,
                        sd,
                        dd,
                        data if inline else None,
                        len(data),
                        version,
                        cversion,
                        aversion,
                        # NULL where the stat implies the value (see NodeState.czxid).
                        None if czxid == mzxid else czxid,
                        mzxid,
                        None if pzxid == czxid else pzxid,
                        None if ctime == mtime else ctime,
                        mtime,
                        owner,
                        children,
                        acl_text,
                        sid,
                    )
                )
            if not inline:
                values[dd] = data
        if replaced:
            before = self._contents([row_id for row_id, _dd, _acl in replaced])
            for row_id, dd, acl_json in replaced:
                old_dd, old_acl = before[row_id]
                if old_dd != dd or (with_acl and _json_value(old_acl) != acl_json):
                    # A new stat alone (a child came or went) is not a modification.
                    self.modified += 1
        self._close(close, len(close))
        store_blob_keys(self.connection, values)
        self.written += len(rows)
        if self.sqlite:
            self._make_room()
        if self.literal:
            for statement in _literal_inserts(rows):
                self._run(statement)
        else:
            insert_node = _SQLITE_INSERT_NODE if sqlite else self.sql.insert_node
            self.connection.exec_driver_sql(insert_node, rows)

    def _run(self, sql: str) -> None:
        """A statement with no parameters, straight to the driver (no % formatting)."""
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def _close(self, ids: list[int], expected: int) -> None:
        closed = close_rows(self.session, NodeState, ids, self.snapshot_id)
        if closed != expected:
            raise ConcurrentWriteError(
                "another writer changed the node_states of this tree while it was being"
                f" written ({closed} of {expected} rows were still open); nothing was"
                " written, run it again"
            )

    def finish(self) -> None:
        """Close the open rows no chunk matched: their paths are gone."""
        if self.open_rows is not None:
            gone = self._ids(self.open_rows.unmatched())
            self.removed = len(gone)
            self._close(gone, len(gone))
            return
        self.removed = self.open_before - self.matched
        if self.removed > 0:
            self._close_unseen()

    def close(self) -> None:
        """Drop the spool; the pooled connection goes back with the cache it came with,
        whether the capture finished or failed."""
        self.unchanged.close()
        if self.cache_before is not None:
            with contextlib.suppress(DBAPIError):  # a connection the failure broke
                self.connection.exec_driver_sql(f"PRAGMA cache_size = {int(self.cache_before)}")

    def _close_unseen(self) -> None:
        connection = self.session.connection()
        seen = Table(
            f"zkdrift_seen_{self.snapshot_id}",
            MetaData(),
            Column("id", BigInteger, primary_key=True, autoincrement=False),
            prefixes=["TEMPORARY"],
        )
        seen.create(connection)
        try:
            self.unchanged.seek(0)
            while True:
                ids = array("q")
                with contextlib.suppress(EOFError):  # the last, shorter run
                    ids.fromfile(self.unchanged, INSERT_CHUNK)
                if not ids:
                    break
                connection.execute(insert(seen), [{"id": i} for i in ids])
            result = connection.execute(
                update(NodeState)
                .where(
                    NodeState.tree_id == self.tree_id,
                    NodeState.valid_to.is_(None),
                    NodeState.valid_from < self.snapshot_id,
                    NodeState.id.not_in(select(seen.c.id)),
                )
                .values(valid_to=self.snapshot_id)
            )
            closed = result.rowcount
        finally:
            temporary = "TEMPORARY " if connection.dialect.name in ("mysql", "mariadb") else ""
            # MySQL/MariaDB commit the transaction on a DROP TABLE without TEMPORARY.
            connection.exec_driver_sql(f"DROP {temporary}TABLE {seen.name}")
        if closed != self.removed:
            raise ConcurrentWriteError(
                "another writer changed the node_states of this tree while it was being"
                f" written ({closed} of {self.removed} removed rows were still open);"
                " nothing was written, run it again"
            )


# Bytes of SQL per multi-row INSERT built as text: well under max_allowed_packet.
LITERAL_STATEMENT_MAX = 4 * 1024 * 1024


def _literal_inserts(rows: Sequence[tuple[Any, ...]]) -> Iterator[str]:
    """Node rows (in :data:`_NODE_COLUMNS` order) as multi-row INSERT statements of
    literals for MySQL/MariaDB: integers as digits, bytes and text as hex literals
    (X'..', C-speed ``bytes.hex()``, no escaping to get wrong), NULL as NULL. Text
    carries the ``_utf8mb4`` introducer: MySQL 8 refuses a JSON value made from a
    binary string, and a text column then takes the characters, not bytes."""
    head = f"INSERT INTO node_states ({_NODE_COLUMNS}) VALUES "
    parts: list[str] = []
    size = 0
    for (
        tree_id,
        pd,
        path,
        sd,
        dd,
        data,
        length,
        version,
        cversion,
        aversion,
        czxid,
        mzxid,
        pzxid,
        ctime,
        mtime,
        owner,
        children,
        acl,
        sid,
    ) in rows:
        value = "NULL" if data is None else f"X'{data.hex()}'"
        acl_sql = "NULL" if acl is None else f"_utf8mb4 X'{acl.encode().hex()}'"
        czxid_sql = "NULL" if czxid is None else czxid
        pzxid_sql = "NULL" if pzxid is None else pzxid
        ctime_sql = "NULL" if ctime is None else ctime
        part = (
            f"({tree_id},X'{pd.hex()}',_utf8mb4 X'{path.encode().hex()}',X'{sd.hex()}',"
            f"X'{dd.hex()}',"
            f"{value},{length},{version},{cversion},{aversion},{czxid_sql},{mzxid},{pzxid_sql},"
            f"{ctime_sql},{mtime},{owner},{children},{acl_sql},{sid})"
        )
        parts.append(part)
        size += len(part)
        if size > LITERAL_STATEMENT_MAX:
            yield head + ",".join(parts)
            parts, size = [], 0
    if parts:
        yield head + ",".join(parts)


def _result(
    tree: Tree, snap: Snapshot, read_seconds: float, *, superseded: bool = False
) -> SnapshotResult:
    return SnapshotResult(
        snapshot_id=snap.id,
        tree=tree.name,
        node_count=snap.node_count,
        total_bytes=snap.total_bytes,
        added=snap.added,
        removed=snap.removed,
        modified=snap.modified,
        ephemeral=snap.ephemeral_count,
        read_seconds=read_seconds,
        write_seconds=snap.write_seconds,
        fuzzy=snap.fuzzy,
        superseded=superseded,
    )


def list_snapshots(session: Session, tree: Tree, limit: int | None = None) -> list[Snapshot]:
    query = select(Snapshot).where(Snapshot.tree_id == tree.id).order_by(Snapshot.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def get_snapshot(session: Session, tree: Tree, snapshot_id: int | None = None) -> Snapshot:
    """The given snapshot of ``tree``, or its latest when ``snapshot_id`` is None."""
    if snapshot_id is None:
        snap = session.scalar(
            select(Snapshot)
            .where(Snapshot.tree_id == tree.id)
            .order_by(Snapshot.id.desc())
            .limit(1)
        )
        if snap is None:
            raise UnknownSnapshotError(
                f"tree {tree.name!r} has no snapshots yet; "
                f"take one with 'zkdrift snapshot {tree.name}'"
            )
        return snap
    snap = session.get(Snapshot, snapshot_id)
    if snap is None or snap.tree_id != tree.id:
        raise UnknownSnapshotError(f"snapshot {snapshot_id} does not exist for tree {tree.name!r}")
    return snap


def valid_at(snapshot_id: int) -> Any:
    """SQL condition: a node state row that was current at ``snapshot_id``."""
    return and_(
        NodeState.valid_from <= snapshot_id,
        or_(NodeState.valid_to.is_(None), NodeState.valid_to > snapshot_id),
    )


def load_snapshot(
    session: Session, tree: Tree, snapshot: Snapshot, *, under: str | None = None
) -> TreeState:
    """Rebuild a snapshot exactly: every node with its data, stat and ACL."""
    query = select(NodeState).where(NodeState.tree_id == tree.id, valid_at(snapshot.id))
    rows = list(session.scalars(query))
    if under is not None:
        from zkdrift.paths import is_under

        rows = [r for r in rows if is_under(r.path, under)]
    values = blob_values(session, rows)
    nodes = {}
    for r in sorted(rows, key=lambda r: r.path):
        nodes[r.path] = _znode(r, row_value(r, values))
    return TreeState(tree.root, nodes)


def blob_values(session: Session, rows: Iterable[Any]) -> dict[str, bytes]:
    """The values of ``rows`` (node states or configurations) that are not in the
    row itself, by digest: those larger than :data:`~zkdrift.store.models.INLINE_MAX`."""
    return load_blobs(session, (r.data_digest for r in rows if r.data is None))


def row_value(r: Any, values: dict[str, bytes]) -> bytes:
    """The value of a node state or configuration row: its own, or from ``values``."""
    return values[r.data_digest] if r.data is None else bytes(r.data)


def _znode(r: Any, data: bytes) -> Znode:
    czxid = r.mzxid if r.czxid is None else r.czxid
    return Znode(
        r.path,
        data,
        Stat(
            version=r.version,
            cversion=r.cversion,
            aversion=r.aversion,
            czxid=czxid,
            mzxid=r.mzxid,
            pzxid=czxid if r.pzxid is None else r.pzxid,
            ctime=r.mtime if r.ctime is None else r.ctime,
            mtime=r.mtime,
            ephemeral_owner=r.ephemeral_owner,
            num_children=r.num_children,
            data_length=r.data_length,
        ),
        acl_from_json(r.acl),
    )


def path_order(session: Session, column: Any) -> Any:
    """``column`` (a path) as an ORDER BY that sorts like Python strings: by code point.

    SQLite's BINARY collation already does. PostgreSQL's "C" collation compares
    bytes, and UTF-8 bytes sort in code-point order; MariaDB's ``utf8mb4_bin``
    ignores trailing spaces, its ``nopad`` twin does not.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return column.collate("C")
    if dialect in ("mysql", "mariadb"):
        return column.collate("utf8mb4_nopad_bin")
    return column


def iter_snapshot_nodes(
    session: Session, tree: Tree, snapshot_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[Znode]:
    """Every node of a snapshot, whole, sorted by path, holding ``chunk`` at a time:
    :func:`load_snapshot` for trees too large to hold."""
    query = select(NodeState.__table__).where(NodeState.tree_id == tree.id, valid_at(snapshot_id))
    for rows in streamed_chunks(session, query, path_order(session, NodeState.path), chunk):
        values = blob_values(session, rows)
        for r in rows:
            yield _znode(r, row_value(r, values))


def iter_node_keys(
    session: Session,
    tree: Tree,
    snapshot_id: int,
    *,
    with_acl: bool = True,
    chunk: int = STREAM_CHUNK,
) -> Iterator[NodeKey]:
    """A snapshot's nodes as comparison keys (see :data:`zkdrift.diff.NodeKey`), in
    path digest order, one query per ``chunk`` rows (keyset pagination: the session
    stays free for other queries between chunks). Without ``with_acl`` every ACL
    comes out as None (not read)."""
    columns = (
        NodeState.path_digest,
        NodeState.path,
        NodeState.data_digest,
        acl_text(NodeState.acl) if with_acl else null(),
        NodeState.ephemeral_owner != 0,
    )
    query = select(*columns).where(NodeState.tree_id == tree.id, valid_at(snapshot_id))
    rows = ordered_rows(session, query, NodeState.path_digest, chunk, tree_id=tree.id)
    if not with_acl:
        # The rows are the keys already: no tuple, nor frame, of our own per node.
        return rows
    return ((pd, path, dd, acl_key(acl), ephemeral) for pd, path, dd, acl, ephemeral in rows)


def iter_paths(
    session: Session, tree: Tree, snapshot_id: int, *, chunk: int = STREAM_CHUNK
) -> Iterator[tuple[str, bool]]:
    """A snapshot's paths, each with whether it is ephemeral, in no particular order."""
    query: Any = select(NodeState.path, NodeState.ephemeral_owner != 0).where(
        NodeState.tree_id == tree.id, valid_at(snapshot_id)
    )
    for rows in streamed_chunks(session, query, None, chunk, plain=True):
        yield from rows


def load_nodes(
    session: Session, tree: Tree, snapshot_id: int, paths: Iterable[str]
) -> dict[str, Znode]:
    """The nodes at ``paths`` in a snapshot, whole (data, stat, ACL), by path;
    paths the snapshot lacks are left out."""
    query = select(NodeState.__table__).where(
        NodeState.tree_id == tree.id,
        not_indexed(NodeState.valid_from) <= snapshot_id,
        or_(NodeState.valid_to.is_(None), NodeState.valid_to > snapshot_id),
    )
    rows = by_path_digest(session, query, NodeState.path_digest, paths)
    values = blob_values(session, rows)
    return {r.path: _znode(r, row_value(r, values)) for r in sorted(rows, key=lambda r: r.path)}
