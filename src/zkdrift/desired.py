"""Desired state: what a tree should hold, changed only through recorded revisions.

The library calls behind ``zkdrift desired ...`` and the flows: import from a
file or directory, set and unset single paths, roll back to an old
revision, export, and list the log (adopting live is
:func:`zkdrift.reconcile.adopt`). Every change is one new
revision (author, message, source, time) written in one transaction; input
that breaks a rule raises :class:`~zkdrift.errors.InvalidInputError` naming
the offending entry, and nothing is written.

Rules for what a tree manages (checked on every write, see
:class:`zkdrift.scope.Scope`): paths are valid, absolute and under the
tree's root; none lies under one of the tree's exclude globs or where
zkdrift keeps its locks; when the tree has include globs, every path
matches one. Ephemeral nodes are never part of desired state.
"""

from __future__ import annotations

import datetime as dt
import logging
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from zkdrift import paths
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.formats import FormatError, load_desired
from zkdrift.formats.zkjson import NotStreamableError, iter_export, stream_export
from zkdrift.gitsource import fetch_source, remote_commit
from zkdrift.model import TreeState, Znode
from zkdrift.policy import MAX_OP_BYTES
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.desired import RevisionChange, RevisionOrigin
from zkdrift.store.models import DesiredRevision, Tree
from zkdrift.vocabulary import iso, origin_text

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
    # Synced from Git: the commit, its author and message, the repository (masked).
    commit: str | None = None
    commit_author: str | None = None
    commit_message: str | None = None
    source_url: str | None = None
    # A hand-made change to a tree whose desired state comes from Git.
    override: bool = False

    @property
    def changed(self) -> int:
        return self.added + self.removed + self.modified

    @property
    def origin(self) -> str:
        """Where the revision came from, for people: ``commit 1a2b3c4d5e6f by Ann <ann@x>:
        subject``, ``override by bob`` or the source word (``import``, ``set``, ...)."""
        return origin_text(
            self.source,
            self.author,
            self.commit,
            self.commit_author,
            self.commit_message,
            self.override,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "revision": self.revision,
            "author": self.author,
            "message": self.message,
            "source": self.source,
            "created_at": iso(self.created_at),
            "entries": self.entries,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "commit": self.commit,
            "commit_author": self.commit_author,
            "commit_message": self.commit_message,
            "source_url": self.source_url,
            "override": self.override,
        }


class HandChangeRefusedError(InvalidInputError):
    """A hand-made desired change to a tree whose source of truth is a Git repository."""


@dataclass(frozen=True)
class DesiredExport:
    tree: str
    revision: int
    state: TreeState


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
        commit=rev.source_commit,
        commit_author=rev.source_author,
        commit_message=rev.source_message,
        source_url=rev.source_url,
        override=bool(rev.override),
    )


def refuse_hand_change(tree: Tree, what: str, *, override: bool) -> None:
    """Refuse a hand-made desired change (``what``: set, unset, import, adopt, ...) to a
    tree whose desired state comes from Git, unless it is an ``override``."""
    source = tree.policy.desired_source
    if source is None or override:
        return
    raise HandChangeRefusedError(
        f"tree {tree.name!r} takes its desired state from {source.describe()}: the source of"
        f" truth is the repository, so change it there (or pass --override to record this"
        f" {what} as an override)"
    )


def check_managed_path(app: App, tree: Tree, path: str, *, source: str | None = None) -> str:
    """Return ``path`` when ``tree`` may hold it in desired state; else raise naming it."""
    where = "" if source is None else f"{source}: "
    entry = f"{where}entry {path!r}"
    try:
        paths.validate_path(path)
    except paths.InvalidPathError as exc:
        raise InvalidInputError(f"{entry}: invalid ZooKeeper path: {exc}") from None
    problem = app.scope(tree).unmanaged_problem(path)
    if problem is not None:
        raise InvalidInputError(f"{entry}: {problem} (tree {tree.name!r})")
    return path


def _check_state(app: App, tree: Tree, state: TreeState, source: str | None) -> None:
    for path in state.nodes:
        check_managed_path(app, tree, path, source=source)


def write_state(
    app: App,
    session: Session,
    tree: Tree,
    state: TreeState,
    *,
    author: str | None,
    message: str,
    source: str,
    origin: RevisionOrigin | None = None,
    override: bool = False,
    allow_empty: bool = False,
) -> RevisionResult | None:
    """Make ``state`` the desired state of ``tree`` as a new revision in ``session``'s
    transaction; None (nothing written) when it equals the current one.

    Every desired write passes here: on a tree whose desired state comes from
    Git, only a sync (``origin``) or an ``override`` may write.
    """
    if origin is None:
        refuse_hand_change(tree, source, override=override)
    written = desired_store.write_revision(
        session,
        tree,
        state,
        author=app.actor(author),
        message=message,
        source=source,
        origin=origin,
        override=override and tree.policy.desired_source is not None,
        allow_empty=allow_empty,
    )
    return _written(tree, written, source)


def _written(
    tree: Tree, written: tuple[DesiredRevision, RevisionChange] | None, source: str
) -> RevisionResult | None:
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
    """The current desired state, read under the tree's write lock: a change made
    from it cannot undo another writer's change made meanwhile."""
    tree_store.lock_tree(session, tree)
    return dict(desired_store.load_desired(session, tree).nodes)


def import_desired(
    app: App,
    name: str,
    source: Path,
    *,
    message: str,
    author: str | None = None,
    prefix: str | None = None,
    override: bool = False,
) -> RevisionResult | None:
    """Make the contents of ``source`` the desired state of ``name``: all or nothing.

    ``source`` is a zkdrift JSON export, a YAML file (nested or flat), a flat
    JSON mapping, a zk-shell JSON backup or a directory tree (see
    :mod:`zkdrift.formats`); ``prefix`` places a zk-shell backup's keys (see
    :mod:`zkdrift.formats.zkshell`). Returns None when it equals the current
    desired state (no revision is written).
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
    refuse_hand_change(tree, "import", override=override)
    if prefix is None:
        streamed = _import_streamed(
            app, tree, source, message=message, author=author, override=override
        )
        if not isinstance(streamed, _NotStreamed):
            return streamed
    # Files of a directory tree are refused above one request's size, or the
    # tree's own limit when its servers take larger requests.
    max_file_bytes = max(MAX_OP_BYTES, tree.policy.max_op_bytes)
    try:
        state = load_desired(source, root=tree.root, max_file_bytes=max_file_bytes, prefix=prefix)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    _check_state(app, tree, state, str(source))
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return write_state(
            app,
            session,
            tree,
            state,
            author=author,
            message=message,
            source="import",
            override=override,
        )


def write_streamed(
    app: App,
    session: Session,
    tree: Tree,
    nodes: Iterable[Znode],
    *,
    author: str | None,
    message: str,
    source: str,
    override: bool = False,
) -> RevisionResult | None:
    """:func:`write_state` for nodes streamed in path order (a tree too large to hold)."""
    refuse_hand_change(tree, source, override=override)
    written = desired_store.write_revision_stream(
        session,
        tree,
        nodes,
        author=app.actor(author),
        message=message,
        source=source,
        override=override and tree.policy.desired_source is not None,
    )
    return _written(tree, written, source)


class _NotStreamed:
    """What :func:`_import_streamed` returns when the file must be read whole."""


_NOT_STREAMED = _NotStreamed()


def _import_streamed(
    app: App, tree: Tree, source: Path, *, message: str, author: str | None, override: bool
) -> RevisionResult | _NotStreamed | None:
    """Import a zkdrift export laid out as zkdrift writes it a node at a time, writing
    the revision as it goes (:func:`zkdrift.store.desired.write_revision_stream`).

    Anything else, and anything wrong with the file (a bad node, a path the tree
    does not manage), rolls back and answers :data:`_NOT_STREAMED`: the whole-file
    reader then accepts every other layout and reports the problem exactly as it
    always has, all or nothing.
    """
    try:
        if not stat.S_ISREG(source.stat().st_mode):
            return _NOT_STREAMED
        with source.open("rb") as lines, app.db.session() as session:
            _header, nodes = stream_export(lines, source=str(source))
            tree = tree_store.get_tree(session, tree.name)

            def checked() -> Iterator[Znode]:
                for node in nodes:
                    if not node.ephemeral:
                        if not paths.is_under(node.path, tree.root):
                            raise NotStreamableError("a node outside the tree's root")
                        check_managed_path(app, tree, node.path, source=str(source))
                    yield node

            written = desired_store.write_revision_stream(
                session,
                tree,
                checked(),
                author=app.actor(author),
                message=message,
                source="import",
                override=override and tree.policy.desired_source is not None,
            )
            return _written(tree, written, "import")
    except (OSError, NotStreamableError, FormatError, InvalidInputError, ValueError, RuntimeError):
        return _NOT_STREAMED


def set_value(
    app: App,
    name: str,
    path: str,
    value: bytes,
    *,
    message: str | None = None,
    author: str | None = None,
    override: bool = False,
) -> RevisionResult | None:
    """Set one path's desired value (creating the entry); None when already so."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        refuse_hand_change(tree, "set", override=override)
        check_managed_path(app, tree, path)
        nodes = _current(session, tree)
        previous = nodes.get(path)
        nodes[path] = Znode(path, value, None, None if previous is None else previous.acl)
        return write_state(
            app,
            session,
            tree,
            TreeState(tree.root, nodes),
            author=author,
            message=message or f"set {path}",
            source="set",
            override=override,
        )


def unset_value(
    app: App,
    name: str,
    path: str,
    *,
    recursive: bool = False,
    message: str | None = None,
    author: str | None = None,
    override: bool = False,
) -> RevisionResult:
    """Remove a path (with ``recursive``, its whole subtree) from the desired state."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        refuse_hand_change(tree, "unset", override=override)
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
        result = write_state(
            app,
            session,
            tree,
            TreeState(tree.root, nodes),
            author=author,
            message=message or f"unset {path}" + (" (recursive)" if below else ""),
            source="unset",
            override=override,
        )
        assert result is not None  # a path was removed, so the state changed
        return result


def rollback(
    app: App,
    name: str,
    revision: int,
    *,
    message: str | None = None,
    author: str | None = None,
    override: bool = False,
) -> RevisionResult | None:
    """A new revision equal to old ``revision``; None when desired already equals it."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        refuse_hand_change(tree, "rollback", override=override)
        old = desired_store.get_revision(session, tree, revision)
        state = desired_store.load_desired(session, tree, old)
        return write_state(
            app,
            session,
            tree,
            state,
            author=author,
            message=message or f"rollback to revision {revision}",
            source="rollback",
            override=override,
        )


def has_desired_state(app: App, name: str) -> bool:
    """Whether the tree has a desired state (without one it is only observed)."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return desired_store.latest_revision(session, tree) is not None


def export_desired(app: App, name: str, *, revision: int | None = None) -> DesiredExport:
    """The desired state at ``revision`` (default: the latest), values as bytes."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        rev = _exported_revision(session, tree, name, revision)
        return DesiredExport(name, rev.number, desired_store.load_desired(session, tree, rev))


def _exported_revision(
    session: Session, tree: Tree, name: str, revision: int | None
) -> DesiredRevision:
    if revision is None:
        rev = desired_store.latest_revision(session, tree)
        if rev is None:
            raise InvalidInputError(
                f"tree {name!r} has no desired state yet; import one with "
                f"'zkdrift desired import {name} FILE'"
            )
        return rev
    return desired_store.get_revision(session, tree, revision)


@dataclass
class StreamedExport:
    """A desired revision on its way out as a zkdrift export; ``entries`` counts the
    nodes written so far."""

    revision: int
    entries: int = 0


@contextmanager
def export_desired_json(
    app: App, name: str, *, revision: int | None = None
) -> Iterator[tuple[StreamedExport, Iterator[bytes]]]:
    """:func:`export_desired` as zkdrift export bytes, streamed out of the store while
    the context is open: the bytes of ``dump_export(export_desired(...).state)``."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        rev = _exported_revision(session, tree, name, revision)
        info = StreamedExport(rev.number)

        def counted() -> Iterator[Znode]:
            for node in desired_store.iter_desired_nodes(session, tree, rev.id):
                info.entries += 1
                yield node

        yield info, iter_export(counted(), root=tree.root, tree=name)


def desired_log(app: App, name: str, *, limit: int | None = None) -> list[RevisionResult]:
    """The tree's revisions, newest first."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return [_result(tree, r) for r in desired_store.list_revisions(session, tree, limit)]


# -- desired state from Git ---------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    """One sync of a tree's desired source: the commit found, and the revision it wrote
    (None: the commit was already synced, nothing was written)."""

    tree: str
    source: str  # the source as written, credentials masked
    commit: str
    revision: RevisionResult | None
    previous_commit: str | None

    @property
    def changed(self) -> bool:
        return self.revision is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "tree": self.tree,
            "source": self.source,
            "commit": self.commit,
            "previous_commit": self.previous_commit,
            "changed": self.changed,
            "revision": None if self.revision is None else self.revision.as_json(),
        }


def _synced(session: Session, tree: Tree, shown: str) -> str | None:
    """The commit the tree's current source was last synced at (None: never)."""
    last = desired_store.latest_synced(session, tree)
    if last is None or last.source_url != shown:
        return None
    return last.source_commit


def sync_desired(app: App, name: str, *, author: str | None = None) -> SyncResult:
    """Fetch the tree's desired source; when its commit changed, import the content
    as a new revision (all or nothing, with the checks of :func:`import_desired`).

    The revision records the commit, its author and message, and the source
    (credentials masked). The same commit writes nothing. Two syncs at once
    write one revision: the second finds the commit synced once it holds the
    tree's write lock.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        source = tree.policy.desired_source
        if source is None:
            raise InvalidInputError(
                f"tree {name!r} has no desired source; set one with 'zkdrift tree set {name}"
                " --desired-source REPOSITORY//PATH?ref=BRANCH'"
            )
        shown = source.describe()
        previous = _synced(session, tree, shown)
    timeout = app.settings.git_timeout
    head = remote_commit(source, timeout=timeout)
    if head == previous:
        log.info("desired source of %s is at %s, already synced", name, head[:12])
        return SyncResult(name, shown, head, None, previous)
    max_file_bytes = max(MAX_OP_BYTES, tree.policy.max_op_bytes)
    with fetch_source(source, timeout=timeout, max_file_bytes=max_file_bytes) as fetched:
        try:
            state = load_desired(fetched.content, root=tree.root, max_file_bytes=max_file_bytes)
        except FormatError as exc:
            raise FormatError(
                fetched.name(exc.source),
                exc.problem.replace(str(fetched.content), fetched.shown),
                line=exc.line,
                entry=exc.entry,
            ) from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {fetched.shown}: {exc.strerror or exc}") from None
    commit = fetched.commit
    _check_state(app, tree, state, fetched.shown)
    origin = RevisionOrigin(
        commit=commit.sha, author=commit.author, message=commit.message, url=shown
    )
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        tree_store.lock_tree(session, tree)
        again = _synced(session, tree, shown)
        if again == commit.sha:  # another sync wrote it while this one fetched
            return SyncResult(name, shown, commit.sha, None, again)
        result = write_state(
            app,
            session,
            tree,
            state,
            author=author,
            message=f"sync {commit.short}: {commit.subject}".rstrip(": "),
            source="git",
            origin=origin,
            allow_empty=True,
        )
    log.info("desired state of %s synced from %s at commit %s", name, shown, commit.short)
    return SyncResult(name, shown, commit.sha, result, previous)


def get_revision(app: App, name: str, number: int | None = None) -> RevisionResult | None:
    """One revision of the tree (the latest when ``number`` is None; None: there is none)."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        if number is None:
            rev = desired_store.latest_revision(session, tree)
            return None if rev is None else _result(tree, rev)
        return _result(tree, desired_store.get_revision(session, tree, number))


def revision_origin(app: App, name: str, number: int | None) -> str | None:
    """``desired revision 4: commit 1a2b3c4d5e6f by Ann <ann@x>: subject (from SOURCE)``:
    where the revision came from, for reports and artifacts (None without one)."""
    if number is None:
        return None
    rev = get_revision(app, name, number)
    if rev is None:
        return None
    where = f" (from {rev.source_url})" if rev.commit and rev.source_url else ""
    return f"desired revision {rev.revision}: {rev.origin}{where}"
