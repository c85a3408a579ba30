"""Desired state: what a tree should hold, changed only through recorded revisions.

The library calls behind ``zkdrift desired ...`` and the flows: import from a
file or directory, set and unset single paths, adopt a live snapshot, roll
back to an old revision, export, and list the log. Every change is one new
revision (author, message, source, time) written in one transaction; input
that breaks a rule raises :class:`~zkdrift.errors.InvalidInputError` naming
the offending entry, and nothing is written.

Rules for what a tree manages (checked on every write): paths are valid,
absolute and under the tree's root; none lies under one of the tree's
exclude globs; when the tree has include globs, every path matches one.
Ephemeral nodes are never part of desired state.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from zkdrift import paths
from zkdrift.app import App
from zkdrift.diff import managed_view
from zkdrift.errors import InvalidInputError
from zkdrift.formats import FormatError, load_desired
from zkdrift.model import TreeState, Znode
from zkdrift.snapshot import read_live, record_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Apply, DesiredRevision, Tree, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevisionResult:
    """One desired-state revision: who, why, from where, and what it changed."""

    tree: str
    revision: int
    author: str
    message: str
    source: str
    created_at: dt.datetime
    entries: int
    added: int
    removed: int
    modified: int

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.modified


@dataclass(frozen=True)
class AdoptResult:
    """An adopt: the snapshot taken as desired, the revision it made (None when
    desired already equalled it) and the revision now marked as applied."""

    snapshot_id: int
    revision: RevisionResult | None
    applied_revision: int


@dataclass(frozen=True)
class DesiredExport:
    tree: str
    revision: int
    state: TreeState


def resolve_author(app: App, author: str | None = None) -> str:
    """``author``, else ``ZKDRIFT_AUTHOR`` (settings), else the OS user."""
    if author:
        return author
    if app.settings.author:
        return app.settings.author
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "unknown"


def _result(tree: Tree, rev: DesiredRevision) -> RevisionResult:
    return RevisionResult(
        tree=tree.name,
        revision=rev.number,
        author=rev.author,
        message=rev.message,
        source=rev.source,
        created_at=rev.created_at,
        entries=rev.entry_count,
        added=rev.added,
        removed=rev.removed,
        modified=rev.modified,
    )


def check_managed_path(tree: Tree, path: str, *, source: str | None = None) -> str:
    """Return ``path`` when ``tree`` may hold it in desired state; else raise naming it."""
    where = "" if source is None else f"{source}: "
    entry = f"{where}entry {path!r}"
    try:
        paths.validate_path(path)
    except paths.InvalidPathError as exc:
        raise InvalidInputError(f"{entry}: invalid ZooKeeper path: {exc}") from None
    if not paths.is_under(path, tree.root):
        raise InvalidInputError(
            f"{entry}: path is outside the root {tree.root!r} of tree {tree.name!r}"
        )
    if tree.excludes and paths.is_excluded(path, tree.excludes):
        glob = next(
            g
            for g in tree.excludes
            if any(paths.glob_match(p, g) for p in (path, *paths.ancestors(path)))
        )
        raise InvalidInputError(
            f"{entry}: path is under the exclude glob {glob!r} of tree {tree.name!r}, "
            "so zkdrift does not manage it"
        )
    if tree.includes and not paths.matches_any(path, tree.includes):
        raise InvalidInputError(
            f"{entry}: path matches none of the include globs of tree {tree.name!r} "
            f"({', '.join(tree.includes)})"
        )
    return path


def _check_state(tree: Tree, state: TreeState, source: str | None) -> None:
    for path in state.nodes:
        check_managed_path(tree, path, source=source)


def _write(
    app: App,
    session: Session,
    tree: Tree,
    state: TreeState,
    *,
    author: str | None,
    message: str,
    source: str,
) -> RevisionResult | None:
    written = desired_store.write_revision(
        session,
        tree,
        state,
        author=resolve_author(app, author),
        message=message,
        source=source,
    )
    if written is None:
        log.info("desired state of %s unchanged; no revision written", tree.name)
        return None
    rev, change = written
    log.info(
        "desired revision %d of %s (%s): +%d -%d ~%d",
        rev.number,
        tree.name,
        source,
        change.added,
        change.removed,
        change.modified,
    )
    return _result(tree, rev)


def _current(session: Session, tree: Tree) -> dict[str, Znode]:
    return dict(desired_store.load_desired(session, tree).nodes)


def import_desired(
    app: App, name: str, source: Path, *, message: str, author: str | None = None
) -> RevisionResult | None:
    """Make the contents of ``source`` the desired state of ``name``: all or nothing.

    ``source`` is a zkdrift JSON export, a YAML file (nested or flat), a flat
    JSON mapping, a zk-shell JSON backup or a directory tree (see
    :mod:`zkdrift.formats`). Returns None when it equals the current desired
    state (no revision is written).
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
    try:
        state = load_desired(source, root=tree.root)
    except FormatError as exc:
        raise InvalidInputError(str(exc)) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    _check_state(tree, state, str(source))
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return _write(app, session, tree, state, author=author, message=message, source="import")


def set_value(
    app: App,
    name: str,
    path: str,
    value: bytes,
    *,
    message: str | None = None,
    author: str | None = None,
) -> RevisionResult | None:
    """Set one path's desired value (creating the entry); None when already so."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        check_managed_path(tree, path)
        nodes = _current(session, tree)
        previous = nodes.get(path)
        nodes[path] = Znode(path, value, None, None if previous is None else previous.acl)
        return _write(
            app,
            session,
            tree,
            TreeState(tree.root, nodes),
            author=author,
            message=message or f"set {path}",
            source="set",
        )


def unset_value(
    app: App,
    name: str,
    path: str,
    *,
    recursive: bool = False,
    message: str | None = None,
    author: str | None = None,
) -> RevisionResult:
    """Remove a path (with ``recursive``, its whole subtree) from the desired state."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        try:
            paths.validate_path(path)
        except paths.InvalidPathError as exc:
            raise InvalidInputError(f"entry {path!r}: invalid ZooKeeper path: {exc}") from None
        nodes = _current(session, tree)
        if path not in nodes:
            raise InvalidInputError(
                f"entry {path!r} is not in the desired state of tree {name!r}; nothing to unset"
            )
        below = sorted(p for p in nodes if p != path and paths.is_under(p, path))
        if below and not recursive:
            raise InvalidInputError(
                f"entry {path!r} has {len(below)} descendant(s) in the desired state "
                f"(e.g. {below[0]!r}); unset them first or pass --recursive"
            )
        for p in [path, *below]:
            del nodes[p]
        result = _write(
            app,
            session,
            tree,
            TreeState(tree.root, nodes),
            author=author,
            message=message or f"unset {path}" + (" (recursive)" if below else ""),
            source="unset",
        )
        assert result is not None  # a path was removed, so the state changed
        return result


def adopt(
    app: App,
    name: str,
    *,
    snapshot_id: int | None = None,
    message: str | None = None,
    author: str | None = None,
    source: str = "adopt",
) -> AdoptResult:
    """Desired := live. Takes a fresh snapshot unless ``snapshot_id`` is given.

    Only what the tree manages is adopted (no ephemeral, excluded or
    not-included nodes; ACLs when the snapshot has them). The adopted
    revision is marked as applied, since live held exactly it, and the adopt
    is audited like an apply (direction ``adopt``).
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
    if snapshot_id is None:
        live = read_live(app, tree)
        snapshot_id = record_snapshot(app, tree, live, source=source).snapshot_id
    else:
        with app.db.session() as session:
            snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
            live = snapshot_store.load_snapshot(session, tree, snap)
    view = managed_view(live, tuple(tree.excludes), tuple(tree.includes))
    state = TreeState(tree.root, {p: Znode(p, n.data, None, n.acl) for p, n in view.items()})
    who = resolve_author(app, author)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        result = _write(
            app,
            session,
            tree,
            state,
            author=who,
            message=message or f"adopt snapshot {snapshot_id}",
            source=source,
        )
        rev = desired_store.latest_revision(session, tree)
        assert rev is not None  # written now, or equal to the existing latest
        desired_store.mark_applied(session, tree, rev)
        now = utcnow()
        session.add(
            Apply(
                tree_id=tree.id,
                desired_revision_id=rev.id,
                direction="adopt",
                actor=who,
                reason=message or f"adopt snapshot {snapshot_id}",
                host=socket.gethostname(),
                started_at=now,
                finished_at=now,
                outcome="succeeded",
            )
        )
        return AdoptResult(snapshot_id, result, rev.number)


def rollback(
    app: App,
    name: str,
    revision: int,
    *,
    message: str | None = None,
    author: str | None = None,
) -> RevisionResult | None:
    """A new revision equal to old ``revision``; None when desired already equals it."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        old = desired_store.get_revision(session, tree, revision)
        state = desired_store.load_desired(session, tree, old)
        return _write(
            app,
            session,
            tree,
            state,
            author=author,
            message=message or f"rollback to revision {revision}",
            source="rollback",
        )


def export_desired(app: App, name: str, *, revision: int | None = None) -> DesiredExport:
    """The desired state at ``revision`` (default: the latest), values as bytes."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        if revision is None:
            rev = desired_store.latest_revision(session, tree)
            if rev is None:
                raise InvalidInputError(
                    f"tree {name!r} has no desired state yet; import one with "
                    f"'zkdrift desired import {name} FILE'"
                )
        else:
            rev = desired_store.get_revision(session, tree, revision)
        return DesiredExport(name, rev.number, desired_store.load_desired(session, tree, rev))


def desired_log(app: App, name: str, *, limit: int | None = None) -> list[RevisionResult]:
    """The tree's revisions, newest first."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return [_result(tree, r) for r in desired_store.list_revisions(session, tree, limit)]


def values_of(state: TreeState, under: str | None = None) -> Iterable[Znode]:
    """The nodes of ``state`` (below ``under`` when given), by path."""
    for path in sorted(state.nodes):
        if under is None or paths.is_under(path, under):
            yield state.nodes[path]
