"""Drift in seconds: each tree followed through a persistent recursive watch.

:class:`Watcher` is the library behind ``zkdrift watch`` (and the watcher
inside ``zkdrift serve``). It keeps one :class:`TreeWatcher` per registered
tree (or per named tree), following the tree list in the database. A tree
watcher holds one ZooKeeper session with a persistent recursive watch on the
tree's root (:mod:`zkdrift.zk.watch`) and:

- collects the notifications of a short window (``watch_debounce_seconds``,
  longer while the database is slower than that) into one batch;
- reads the batch's nodes (data and stat, in multiRead batches), classifies
  those paths alone against the desired state and what zkdrift last applied
  (the same :func:`~zkdrift.diff.classify` as a full check), and records a
  drift run holding the tree's whole drift, so ``zkdrift status`` and the
  reports see it at once;
- records each notification (path, kind, the node's mzxid and version) as a
  watch event: the history between snapshots;
- tells an :class:`EventSink` (Prefect events, see
  :mod:`zkdrift.flows.events`) what changed and when the tree drifts or is
  back in sync.

It resynchronises (one full read, recorded as a snapshot and a drift check
with :func:`~zkdrift.drift.check_drift`) when it starts, after the session
expired, and after a reconnect when the server's zxid moved meanwhile: the
server keeps a watch per connection, so notifications of the gap are lost.
The resync is logged and recorded as a ``resync`` event with its reason.

A new desired revision or apply is picked up from the database
(``watch_poll_seconds``): the paths whose desired or applied value changed
are read again and classified. A changed root, connect string, excludes or
includes restart the tree's watcher (with a resync).

Servers older than 3.6 answer addWatch with UNIMPLEMENTED: the tree is then
read in full every ``watch_fallback_seconds``, and ``zkdrift status`` says
``polling``.

Memory per tree: the desired and applied state (what every check loads),
the paths and mzxids of the live tree, and the live nodes that differ from
desired; never the values of the rest of the live tree.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, UnimplementedError

from zkdrift.app import App
from zkdrift.diff import DriftItem, classify, diff, without_required_parents
from zkdrift.drift import NoDesiredStateError, check_drift
from zkdrift.errors import ZkDriftError
from zkdrift.model import ChangeKind, DriftClass, Znode
from zkdrift.paths import ancestors
from zkdrift.scope import Scope
from zkdrift.snapshot import record_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import drift as drift_store
from zkdrift.store import trees as tree_store
from zkdrift.store import watch as watch_store
from zkdrift.store.models import Tree, utcnow
from zkdrift.store.watch import HEARTBEAT_SECONDS, POLLING, STOPPED, WATCHING
from zkdrift.zk import client as zk
from zkdrift.zk.reader import read_acls, read_tree
from zkdrift.zk.watch import Gap, Notification, PersistentWatch, fetch_nodes, sync_zxid

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 30.0
SOURCE = "watch"
# Paths named in one znode-changed event, at most.
EVENT_PATHS = 100


# -- what a watcher tells the outside world ----------------------------------------------


@dataclass(frozen=True)
class ChangeSummary:
    """One coalesced batch of changes: counts, and the paths (never values)."""

    events: int
    created: int
    changed: int
    deleted: int
    paths: tuple[str, ...]


@dataclass(frozen=True)
class DriftCounts:
    total: int
    drift: int
    pending: int
    conflict: int

    @property
    def in_sync(self) -> bool:
        return self.total == 0


class EventSink(Protocol):
    """Where a watcher's news goes (Prefect events in production)."""

    def changed(self, tree: str, summary: ChangeSummary, counts: DriftCounts) -> None: ...

    def drift_state(self, tree: str, counts: DriftCounts) -> None: ...

    def close(self) -> None: ...


class NoSink:
    """A sink that drops everything."""

    def changed(self, tree: str, summary: ChangeSummary, counts: DriftCounts) -> None:
        return None

    def drift_state(self, tree: str, counts: DriftCounts) -> None:
        return None

    def close(self) -> None:
        return None


# -- one tree ------------------------------------------------------------------------------


class _RestartError(Exception):
    """The tree's settings changed: start its session again (with a resync)."""


class _TreeGoneError(Exception):
    """The tree is no longer registered."""


def _settings_of(tree: Tree) -> tuple[Any, ...]:
    """What a watcher's session depends on: a change restarts it."""
    return (
        tree.hosts,
        tree.root,
        tuple(tree.excludes or ()),
        tuple(tree.includes or ()),
        tree.capture_acl,
        tree.auth_env,
        repr((tree.options or {}).get("tls")),
    )


def _counts(items: Sequence[DriftItem]) -> DriftCounts:
    by = {cls: 0 for cls in DriftClass}
    for item in items:
        by[item.classification] += 1
    return DriftCounts(
        len(items), by[DriftClass.DRIFT], by[DriftClass.PENDING], by[DriftClass.CONFLICT]
    )


_KIND_ORDER = {
    ChangeKind.ADDED: 0,
    ChangeKind.REMOVED: 1,
    ChangeKind.DATA_CHANGED: 2,
    ChangeKind.ACL_CHANGED: 3,
}


@dataclass
class _Desired:
    """The desired and applied state a tree's drift is classified against (managed part)."""

    revision_id: int | None = None
    applied_id: int | None = None
    desired: dict[str, Znode] = field(default_factory=dict)
    base: dict[str, Znode] | None = None

    @property
    def exists(self) -> bool:
        return self.revision_id is not None


class TreeWatcher:
    """Follows one tree until :meth:`stop`; see the module docs."""

    def __init__(self, app: App, name: str, sink: EventSink) -> None:
        self.app = app
        self.name = name
        self.sink = sink
        settings = app.settings
        self.debounce = settings.watch_debounce_seconds
        self.poll = settings.watch_poll_seconds
        self.fallback = settings.watch_fallback_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zkdrift-watch-{name}", daemon=True)
        self.started_at = utcnow()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # Per session:
        self.client: KazooClient | None = None
        self.mode = WATCHING
        self.detail: str | None = None
        self.items: dict[str, list[DriftItem]] = {}
        self.mzxids: dict[str, int] = {}
        self.state = _Desired()
        self.record_seconds = 0.0
        self.resyncs = 0
        self._state_changed = False  # by the last record: drifted <-> in sync
        self._why_start = "watcher started"  # the reason the next session's resync records

    # -- lifecycle

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            resyncs = self.resyncs
            try:
                self._session()
                backoff = 1.0
            except _RestartError:
                self._why_start = "the tree's settings changed"
                continue
            except _TreeGoneError:
                log.info("tree %s is no longer registered: no longer watching it", self.name)
                return
            except Exception as exc:
                if self.resyncs > resyncs:
                    # The session read the tree before it failed: a new failure, not
                    # one more of a run of them, so the wait starts short again.
                    backoff = 1.0
                text = exc if isinstance(exc, ZkDriftError) else zk.describe_error(exc)
                log.warning("watching tree %s: %s; trying again in %gs", self.name, text, backoff)
                self._why_start = f"watching again after an error: {text}"
                log.debug("watcher error", exc_info=True)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self.detail = None
        self._status(STOPPED)

    # -- database helpers

    def _load_tree(self) -> Tree:
        with self.app.db.session() as session:
            if self.name not in tree_store.tree_names(session):
                raise _TreeGoneError
            tree = tree_store.get_tree(session, self.name)
            session.expunge(tree)
            return tree

    def _revisions(self, session: Any, tree: Tree) -> tuple[int | None, int | None]:
        latest = desired_store.latest_revision(session, tree)
        return (None if latest is None else latest.id, tree.applied_revision_id)

    def _load_desired(self, scope: Scope) -> _Desired:
        with self.app.db.session() as session:
            tree = tree_store.get_tree(session, self.name)
            latest = desired_store.latest_revision(session, tree)
            if latest is None:
                return _Desired(None, tree.applied_revision_id)
            desired = desired_store.load_desired(session, tree, latest)
            base = (
                desired
                if tree.applied_revision_id == latest.id
                else desired_store.applied_state(session, tree)
            )
            return _Desired(
                latest.id,
                tree.applied_revision_id,
                scope.managed(desired),
                None if base is None else scope.managed(base),
            )

    def _set_watch(self, session: Any, tree: Tree, mode: str, **when: dt.datetime | None) -> None:
        watch_store.set_watch(
            session,
            tree,
            mode=mode,
            detail=self.detail,
            host=self.host,
            pid=self.pid,
            started_at=self.started_at,
            event_at=when.get("event_at"),
            resync_at=when.get("resync_at"),
        )

    def _status(self, mode: str) -> None:
        """The heartbeat: the watch row says who watches, and how, now."""
        try:
            with self.app.db.session() as session:
                self._set_watch(session, tree_store.get_tree(session, self.name), mode)
        except Exception:  # the tree was removed meanwhile, or the database is away
            log.debug("could not record the watch status of %s", self.name, exc_info=True)

    # -- one session

    def _session(self) -> None:
        tree = self._load_tree()
        settings = _settings_of(tree)
        scope = self.app.scope(tree)
        client = zk.connect(self.app.target(tree))
        watch = PersistentWatch(client, tree.root)
        self.client = client
        try:
            self.mode, self.detail = WATCHING, None
            try:
                watch.add(REQUEST_TIMEOUT)
            except UnimplementedError:
                self.mode = POLLING
                self.detail = (
                    f"ZooKeeper at {client_hosts(client)} has no addWatch (older than 3.6):"
                    f" reading the tree in full every {self.fallback:g}s"
                )
                log.warning("tree %s: %s", self.name, self.detail)
            self._resync(client, tree, scope, self._why_start)
            self._loop(client, watch, tree, scope, settings)
        finally:
            self.client = None
            watch.close()
            zk.close(client)

    def _loop(
        self,
        client: KazooClient,
        watch: PersistentWatch,
        tree: Tree,
        scope: Scope,
        settings: tuple[Any, ...],
    ) -> None:
        now = time.monotonic()
        next_check = now + self.poll
        next_beat = now + HEARTBEAT_SECONDS
        next_full = now + self.fallback
        while not self._stop.is_set():
            wait = min(next_check, next_beat, next_full if self.mode == POLLING else next_beat)
            try:
                first = watch.queue.get(timeout=max(0.0, min(1.0, wait - time.monotonic())))
            except queue.Empty:
                first = None
            if first is not None:
                batch = self._collect(watch, first)
                notes = [n for n in batch if isinstance(n, Notification)]
                gaps = [g for g in batch if isinstance(g, Gap)]
                if notes and self.mode == WATCHING:
                    try:
                        self._changes(client, tree, scope, notes)
                    except (KazooException, client.handler.timeout_exception) as exc:
                        # The connection dropped mid-read: the gap that follows resyncs.
                        log.info(
                            "tree %s: reading changes failed (%r); resynchronising", self.name, exc
                        )
                        self._record_unread(tree, scope, notes)
                        gaps = gaps or [Gap("suspended", 0)]
                if gaps:
                    self._gap(client, watch, tree, scope, gaps)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.poll
                self._check_settings(client, tree, scope, settings)
            if now >= next_beat:
                next_beat = now + HEARTBEAT_SECONDS
                self._status(self.mode)
            if self.mode == POLLING and now >= next_full:
                next_full = now + self.fallback
                self._resync(client, tree, scope, "polling (no addWatch on the server)")

    def _collect(
        self, watch: PersistentWatch, first: Notification | Gap
    ) -> list[Notification | Gap]:
        """``first`` and whatever arrives within the debounce window (at once for a gap)."""
        batch: list[Notification | Gap] = [first]
        window = max(self.debounce, self.record_seconds)
        deadline = time.monotonic() + (window if isinstance(first, Notification) else 0.0)
        while True:
            left = deadline - time.monotonic()
            try:
                item = watch.queue.get(timeout=left) if left > 0 else watch.queue.get_nowait()
            except queue.Empty:
                return batch
            batch.append(item)
            if isinstance(item, Gap):
                deadline = 0.0  # take what is queued now, then handle the gap

    # -- changes

    def _changes(
        self, client: KazooClient, tree: Tree, scope: Scope, notes: Sequence[Notification]
    ) -> None:
        seen_at = utcnow()
        kinds: dict[str, list[str]] = {}
        for note in notes:
            if scope.excluding_glob(note.path) is None and not scope.is_reserved(note.path):
                kinds.setdefault(note.path, []).append(note.kind)
        if not kinds:
            return
        paths = list(kinds)
        fetched = fetch_nodes(client, paths, REQUEST_TIMEOUT)
        if tree.capture_acl:
            present = [p for p, n in fetched.items() if n is not None]
            acls = read_acls(client, present, REQUEST_TIMEOUT)
            fetched = {
                p: None if n is None or p not in acls else Znode(p, n.data, n.stat, acls[p])
                for p, n in fetched.items()
            }
        for path, node in fetched.items():
            if node is None or node.stat is None:
                self.mzxids.pop(path, None)
            else:
                self.mzxids[path] = node.stat.mzxid
        seen: list[watch_store.SeenChange] = []
        for path, path_kinds in kinds.items():
            node = fetched.get(path)
            seen.extend(watch_store.SeenChange(path, k) for k in path_kinds[:-1])
            seen.append(
                watch_store.SeenChange(
                    path,
                    path_kinds[-1],
                    None if node is None or node.stat is None else node.stat.mzxid,
                    None if node is None else node.version,
                )
            )
        self._reclassify(scope, paths, {p: n for p, n in fetched.items() if n is not None}, tree)
        counts = self._record(seen, seen_at)
        summary = ChangeSummary(
            events=len(seen),
            created=sum(1 for c in seen if c.kind == "created"),
            changed=sum(1 for c in seen if c.kind == "changed"),
            deleted=sum(1 for c in seen if c.kind == "deleted"),
            paths=tuple(paths[:EVENT_PATHS]),
        )
        self.sink.changed(self.name, summary, counts)
        if self._state_changed:
            self._announce(counts)

    def _record_unread(self, tree: Tree, scope: Scope, notes: Sequence[Notification]) -> None:
        """Notifications whose nodes could not be read: recorded without stat."""
        seen = [
            watch_store.SeenChange(n.path, n.kind)
            for n in notes
            if scope.excluding_glob(n.path) is None and not scope.is_reserved(n.path)
        ]
        if seen:
            with self.app.db.session() as session:
                watch_store.record_events(
                    session, tree_store.get_tree(session, self.name), seen, seen_at=utcnow()
                )

    def _reclassify(
        self, scope: Scope, paths: Sequence[str], live: Mapping[str, Znode], tree: Tree
    ) -> None:
        """Classify ``paths`` alone, with ``live`` their nodes as read now."""
        state = self.state
        if not state.exists:
            return
        desired = {p: state.desired[p] for p in paths if p in state.desired}
        base: dict[str, Znode] | None = None
        if state.base:
            base = {p: state.base[p] for p in paths if p in state.base}
            if not base:
                # An empty base means "never applied" to classify(); this one is a
                # part of a base that exists. Any base node outside ``paths`` says so
                # without adding an item (items come from live and desired alone).
                anchor = next(iter(state.base))
                base = {anchor: state.base[anchor]}
        items = without_required_parents(
            classify(base, desired, scope.managed(live), compare_acl=tree.capture_acl),
            state.desired,
        )
        for path in paths:
            self.items.pop(path, None)
        for item in items:
            self.items.setdefault(item.path, []).append(item)

    def _all_items(self) -> list[DriftItem]:
        items = [i for path in sorted(self.items) for i in self.items[path]]
        items.sort(key=lambda i: (i.path, _KIND_ORDER[i.kind]))
        return items

    def _record(self, seen: Sequence[watch_store.SeenChange], seen_at: dt.datetime) -> DriftCounts:
        """Record the changes and the tree's drift now; tell the sink when the tree
        drifted or came back in sync."""
        t0 = time.perf_counter()
        items = self._all_items()
        counts = _counts(items)
        previous: int | None = None
        with self.app.db.session() as session:
            tree = tree_store.get_tree(session, self.name)
            if seen:
                watch_store.record_events(session, tree, seen, seen_at=seen_at)
            if self.state.exists:
                previous = watch_store.latest_total(session, tree)
                drift_store.record_run(
                    session,
                    tree,
                    items,
                    against="desired",
                    snapshot_id=None,
                    desired_revision_id=self.state.revision_id,
                    started_at=seen_at,
                    source=SOURCE,
                    digest_of=self.app.redactor().digest,
                )
            # In the same transaction: whoever sees the drift sees the event too.
            self._set_watch(session, tree, self.mode, event_at=seen_at if seen else None)
        self.record_seconds = time.perf_counter() - t0
        log.debug(
            "tree %s: %d changes and %d differences recorded in %.3fs",
            self.name,
            len(seen),
            counts.total,
            self.record_seconds,
        )
        self._state_changed = self.state.exists and (
            previous is None or (previous == 0) != counts.in_sync
        )
        return counts

    def _announce(self, counts: DriftCounts) -> None:
        if counts.in_sync:
            log.info("tree %s is in sync with desired", self.name)
        else:
            log.info(
                "tree %s drifted: %d differences (%d drift, %d pending, %d conflict)",
                self.name,
                counts.total,
                counts.drift,
                counts.pending,
                counts.conflict,
            )
        self.sink.drift_state(self.name, counts)

    # -- gaps and resyncs

    def _gap(
        self,
        client: KazooClient,
        watch: PersistentWatch,
        tree: Tree,
        scope: Scope,
        gaps: Sequence[Gap],
    ) -> None:
        """Wait for the session, set the watch again and resync when changes may be lost."""
        expired = any(g.state == "lost" for g in gaps)
        before = min((g.zxid for g in gaps if g.state == "suspended"), default=0)
        if not client.connected:
            log.info("tree %s: connection to ZooKeeper lost; waiting for it", self.name)
        while not client.connected:
            if self._stop.wait(0.05):
                return
            try:
                gap = watch.queue.get_nowait()
            except queue.Empty:
                continue
            if isinstance(gap, Gap):
                expired = expired or gap.state == "lost"
        if self.mode == POLLING:
            return
        watch.add(REQUEST_TIMEOUT)
        if expired:
            self._resync(client, tree, scope, "the ZooKeeper session expired")
            return
        now = sync_zxid(client, tree.root, REQUEST_TIMEOUT)
        if before and now == before:
            log.info("tree %s: reconnected; nothing changed meanwhile", self.name)
            return
        self._resync(client, tree, scope, "reconnected after the connection dropped")

    def _resync(self, client: KazooClient, tree: Tree, scope: Scope, reason: str) -> None:
        """One full read: recorded as a snapshot and a drift check, and as a resync event."""
        log.info("tree %s: resynchronising (%s): reading it in full", self.name, reason)
        # Whatever was queued before the read is covered by it.
        started = utcnow()
        t0 = time.perf_counter()
        live = read_tree(client, tree.root, excludes=tree.excludes, with_acl=tree.capture_acl)
        result = record_snapshot(
            self.app,
            tree,
            live,
            started_at=started,
            read_seconds=time.perf_counter() - t0,
            source=SOURCE,
        )
        self.state = self._load_desired(scope)
        gap_changes = self._gap_changes(live.nodes)
        self.mzxids = {p: n.stat.mzxid for p, n in live.nodes.items() if n.stat is not None}
        previous: int | None = None
        counts: DriftCounts | None = None
        with self.app.db.session() as session:
            t = tree_store.get_tree(session, self.name)
            previous = watch_store.latest_total(session, t)
        try:
            report = check_drift(self.app, self.name, source=SOURCE, snapshot_id=result.snapshot_id)
        except NoDesiredStateError:
            self.items = {}
        else:
            self.items = {}
            for item in report.items:
                self.items.setdefault(item.path, []).append(item)
            counts = _counts(report.items)
        seen_at = utcnow()
        with self.app.db.session() as session:
            t = tree_store.get_tree(session, self.name)
            if gap_changes:
                watch_store.record_events(session, t, gap_changes, seen_at=seen_at)
            watch_store.record_resync(
                session, t, reason=reason, zxid=live.zxid_end, seen_at=seen_at
            )
            self._set_watch(session, t, self.mode, resync_at=seen_at)
        self.resyncs += 1
        log.info(
            "tree %s: resynchronised (%s): %d nodes, %s",
            self.name,
            reason,
            len(live),
            "no desired state" if counts is None else f"{counts.total} differences",
        )
        if counts is not None and (previous is None or (previous == 0) != counts.in_sync):
            self._announce(counts)

    def _gap_changes(self, nodes: Mapping[str, Znode]) -> list[watch_store.SeenChange]:
        """What changed while no notification could arrive, from the mzxids known before
        (nothing on a first read)."""
        if not self.mzxids:
            return []
        before = self.mzxids
        out: list[watch_store.SeenChange] = []
        for path, node in nodes.items():
            if node.stat is None:
                continue
            old = before.get(path)
            if old is None:
                out.append(watch_store.SeenChange(path, "created", node.stat.mzxid, node.version))
            elif old != node.stat.mzxid:
                out.append(watch_store.SeenChange(path, "changed", node.stat.mzxid, node.version))
        out.extend(watch_store.SeenChange(p, "deleted") for p in before if p not in nodes)
        return out

    # -- settings and desired state

    def _check_settings(
        self, client: KazooClient, tree: Tree, scope: Scope, settings: tuple[Any, ...]
    ) -> None:
        """Restart on a changed connection, root or scope; reclassify on a new revision."""
        with self.app.db.session() as session:
            names = tree_store.tree_names(session)
            if self.name not in names:
                raise _TreeGoneError
            current = tree_store.get_tree(session, self.name)
            if _settings_of(current) != settings:
                log.info("tree %s: its settings changed; starting its watch again", self.name)
                raise _RestartError
            revisions = self._revisions(session, current)
        if revisions == (self.state.revision_id, self.state.applied_id):
            return
        old = self.state
        new = self._load_desired(scope)
        if bool(old.base) != bool(new.base):
            # Never applied <-> applied changes every classification: read it all.
            self.state = new
            self._resync(client, tree, scope, "the tree was applied for the first time")
            return
        paths: set[str] = {c.path for c in diff(old.desired, new.desired, compare_acl=True)}
        for path in list(paths):
            paths.update(a for a in ancestors(path) if a not in paths)
        paths.update(c.path for c in diff(old.base or {}, new.base or {}, compare_acl=True))
        paths.update(self.items)  # a new revision: every open item is classified again
        self.state = new
        if not new.exists:
            self.items = {}
            return
        ordered = sorted(paths)
        fetched = fetch_nodes(client, ordered, REQUEST_TIMEOUT) if ordered else {}
        if tree.capture_acl and fetched:
            present = [p for p, n in fetched.items() if n is not None]
            acls = read_acls(client, present, REQUEST_TIMEOUT)
            fetched = {
                p: None if n is None or p not in acls else Znode(p, n.data, n.stat, acls[p])
                for p, n in fetched.items()
            }
        self._reclassify(scope, ordered, {p: n for p, n in fetched.items() if n is not None}, tree)
        log.info(
            "tree %s: desired revision or apply changed; %d paths classified again",
            self.name,
            len(ordered),
        )
        counts = self._record([], utcnow())
        if self._state_changed:
            self._announce(counts)


def client_hosts(client: KazooClient) -> str:
    return ",".join(f"{h}:{p}" for h, p in client.hosts or ())


# -- every tree ----------------------------------------------------------------------------


class Watcher:
    """One :class:`TreeWatcher` per registered tree (or per tree in ``names``), following
    the tree list until :meth:`stop`."""

    def __init__(self, app: App, names: Sequence[str] = (), sink: EventSink | None = None) -> None:
        self.app = app
        self.names = tuple(names)
        self.sink: EventSink = sink or NoSink()
        self.trees: dict[str, TreeWatcher] = {}
        self._stop = threading.Event()

    def _wanted(self, *, strict: bool = False) -> list[str]:
        with self.app.db.session() as session:
            registered = tree_store.tree_names(session)
            if self.names:
                for name in self.names if strict else ():
                    if name not in registered:
                        tree_store.get_tree(session, name)  # the error names the trees there are
                return [n for n in self.names if n in registered]
            return registered

    def refresh(self) -> None:
        """Start watchers for new trees; forget the ones that stopped."""
        wanted = self._wanted()
        for name in wanted:
            watcher = self.trees.get(name)
            if watcher is None or not watcher.alive:
                watcher = TreeWatcher(self.app, name, self.sink)
                self.trees[name] = watcher
                watcher.start()
        for name in [n for n in self.trees if n not in wanted]:
            self.trees.pop(name).stop()

    def run(self) -> None:
        """Watch until :meth:`stop` (or an exception in the calling thread)."""
        self._wanted(strict=True)  # unknown names fail here, before anything starts
        log.info("watching %s", ", ".join(self.names) if self.names else "every registered tree")
        try:
            while not self._stop.is_set():
                try:
                    self.refresh()
                except Exception:  # the database may be away for a moment
                    log.exception("could not re-read the registered trees")
                self._stop.wait(self.app.settings.watch_poll_seconds)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for watcher in self.trees.values():
            watcher.stop()
        # A watcher busy connecting stops when its connect times out; none is waited
        # for longer than the others together (they are daemon threads).
        deadline = time.monotonic() + 10.0
        for watcher in self.trees.values():
            watcher.join(timeout=max(0.0, deadline - time.monotonic()))
        self.sink.close()
