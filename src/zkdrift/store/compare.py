"""Comparing two recorded trees (snapshots or desired revisions) without loading them.

Both trees stream out of the store in path digest order, a chunk at a time,
through the tree's scope (:class:`~zkdrift.scope.PathFilter`); the pure merge
(:func:`zkdrift.diff.differing`) keeps only the paths that differ, and only
those are loaded whole. Memory follows the size of the difference, not the
size of the trees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from zkdrift.diff import NodeKey, covered, differing
from zkdrift.model import Znode
from zkdrift.scope import PathFilter
from zkdrift.store import desired as desired_store
from zkdrift.store import keysets
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store.models import Tree


@dataclass(frozen=True)
class Side:
    """One recorded tree: a snapshot or a desired-state revision, by id."""

    kind: Literal["snapshot", "desired"]
    id: int


def keys(
    session: Session, tree: Tree, side: Side | None, *, with_acl: bool = True
) -> Iterator[NodeKey]:
    """The tree's nodes as comparison keys in path digest order (none for ``None``);
    without ``with_acl``, every ACL as None."""
    if side is None:
        return iter(())
    if side.kind == "snapshot":
        return snapshot_store.iter_node_keys(session, tree, side.id, with_acl=with_acl)
    return desired_store.iter_desired_keys(session, tree, side.id, with_acl=with_acl)


def load(session: Session, tree: Tree, side: Side | None, paths: Iterable[str]) -> dict[str, Znode]:
    """The nodes at ``paths``, whole, by path (paths the side lacks are left out)."""
    if side is None:
        return {}
    if side.kind == "snapshot":
        return snapshot_store.load_nodes(session, tree, side.id, paths)
    return desired_store.load_desired_nodes(session, tree, side.id, paths)


def paths(session: Session, tree: Tree, side: Side | None, view: PathFilter) -> Iterator[str]:
    """The paths ``view`` keeps, in no particular order."""
    if side is None:
        return
    if side.kind == "snapshot":
        for path, ephemeral in snapshot_store.iter_paths(session, tree, side.id):
            if view(path, ephemeral):
                yield path
    else:
        for path in desired_store.iter_desired_paths(session, tree, side.id):
            if view(path, False):
                yield path


# Ancestors a stream remembers (see :meth:`Counts.collecting_ancestors`) before it gives
# up and leaves the question to a stream of its own: a tree's inner nodes are few next
# to its leaves, but a tree could be all inner nodes.
ANCESTOR_LIMIT = 200_000


@dataclass
class Counts:
    """How many nodes of one side a view kept: all, persistent, and below ``root``;
    and, when asked for (:meth:`collecting_ancestors`), every ancestor of a kept node."""

    root: str
    nodes: int = 0
    below_root: int = 0
    persistent: int = 0
    persistent_below_root: int = 0
    ancestors: set[str] | None = None
    ancestor_limit: int = 0

    def collecting_ancestors(self, limit: int | None = None) -> Counts:
        """Also collect the ancestors of the kept nodes while counting (``ancestors``
        is None afterwards when there were more than ``limit``, by default
        :data:`ANCESTOR_LIMIT`)."""
        self.ancestors = set()
        self.ancestor_limit = ANCESTOR_LIMIT if limit is None else limit
        return self

    def counted(self, rows: Iterable[NodeKey], view: PathFilter) -> Iterator[NodeKey]:
        root = self.root
        keeps_all = view.keeps_every_persistent_node
        ancestors = self.ancestors
        limit = self.ancestor_limit
        persistent = ephemeral_nodes = 0
        has_root = has_persistent_root = False
        try:
            for row in rows:
                path = row[1]
                if row[4]:
                    if not view(path, True):
                        continue
                    ephemeral_nodes += 1
                else:
                    if not keeps_all and not view(path, False):
                        continue
                    persistent += 1
                if path == root:
                    has_root = True
                    has_persistent_root = not row[4]
                if ancestors is not None and path != "/":
                    parent = path[: path.rfind("/")] or "/"
                    if parent not in ancestors:
                        _add_ancestors(ancestors, parent)
                        if len(ancestors) > limit:
                            ancestors = self.ancestors = None
                yield row
        finally:
            # Counted as far as the rows were read (all of them, once the merge ends).
            nodes = persistent + ephemeral_nodes
            self.nodes += nodes
            self.below_root += nodes - has_root
            self.persistent += persistent
            self.persistent_below_root += persistent - has_persistent_root


def _add_ancestors(into: set[str], path: str) -> None:
    """Add ``path`` and its ancestors to ``into``, up to the first one it already holds."""
    while path not in into:
        into.add(path)
        if path == "/":
            return
        path = path[: path.rfind("/")] or "/"


def ancestors_among(
    targets: Set[str], counts: Counts, fallback: Callable[[], Iterable[str]]
) -> set[str]:
    """The ``targets`` that are ancestors of a node ``counts`` kept: from the ancestors
    it collected, or, when it collected too many to keep, by streaming the side's paths
    (``fallback``) once more."""
    if not targets:
        return set()
    if counts.ancestors is not None:
        return counts.ancestors.intersection(targets)
    return covered(targets, fallback())


def existing_among(
    session: Session,
    tree: Tree,
    side: Side | None,
    targets: Set[str],
    counts: Counts,
    view: PathFilter,
) -> set[str]:
    """The ``targets`` that are nodes ``view`` keeps of ``side``, or ancestors of one,
    when ``counts`` collected that side's ancestors: those it holds, and the others
    looked up by path. Otherwise by streaming the side's paths once more."""
    if counts.ancestors is None:
        return covered(targets, paths(session, tree, side, view), strict=False)
    found = counts.ancestors.intersection(targets)
    for path, node in load(session, tree, side, targets - found).items():
        if view(path, node.ephemeral):
            found.add(path)
    return found


@dataclass
class Differences:
    """The paths where two trees differ, with both sides' nodes there, whole.

    ``left`` and ``right`` hold the nodes each side has at those paths
    (unfiltered: the caller's pure functions apply the scope again), and
    ``left_only`` / ``right_only`` the paths each view kept that the other
    lacks.
    """

    left: dict[str, Znode]
    right: dict[str, Znode]
    left_only: set[str]
    right_only: set[str]
    left_counts: Counts
    right_counts: Counts
    paths: set[str] = field(default_factory=set)


def differences(
    session: Session,
    tree: Tree,
    left: Side | None,
    right: Side | None,
    *,
    left_view: PathFilter,
    right_view: PathFilter,
    compare_acl: bool = False,
    unread_acl: bool = False,
    left_ancestors: bool = False,
    right_ancestors: bool = False,
) -> Differences:
    """Where ``left`` and ``right`` differ, as their views see them (see
    :func:`zkdrift.diff.differing` for what differs). With ``left_ancestors`` /
    ``right_ancestors`` that side's counts also collect the ancestors of its nodes
    (see :func:`ancestors_among`)."""
    if not (compare_acl or unread_acl) and (
        left_view.keeps_every_persistent_node and right_view.keeps_every_persistent_node
    ):
        found = _by_arrays(session, tree, (left, left_view), (right, right_view))
        if found is not None:
            return found
    left_counts = Counts(tree.root)
    right_counts = Counts(tree.root)
    if left_ancestors:
        left_counts.collecting_ancestors()
    if right_ancestors:
        right_counts.collecting_ancestors()
    changed: set[str] = set()
    left_only: set[str] = set()
    right_only: set[str] = set()
    with_acl = compare_acl or unread_acl
    for lrow, rrow in differing(
        left_counts.counted(keys(session, tree, left, with_acl=with_acl), left_view),
        right_counts.counted(keys(session, tree, right, with_acl=with_acl), right_view),
        compare_acl=compare_acl,
        unread_acl=unread_acl,
    ):
        if rrow is None:
            assert lrow is not None
            left_only.add(lrow[1])
        elif lrow is None:
            right_only.add(rrow[1])
        else:
            changed.add(rrow[1])
    return _loaded(
        session, tree, (left, left_only, left_counts), (right, right_only, right_counts), changed
    )


def _loaded(
    session: Session,
    tree: Tree,
    left: tuple[Side | None, set[str], Counts],
    right: tuple[Side | None, set[str], Counts],
    changed: set[str],
) -> Differences:
    """The differences found, with both sides' nodes at every differing path loaded."""
    (left_side, left_only, left_counts), (right_side, right_only, right_counts) = left, right
    every = changed | left_only | right_only
    return Differences(
        left=load(session, tree, left_side, every),
        right=load(session, tree, right_side, every),
        left_only=left_only,
        right_only=right_only,
        left_counts=left_counts,
        right_counts=right_counts,
        paths=every,
    )


def _by_arrays(
    session: Session,
    tree: Tree,
    left: tuple[Side | None, PathFilter],
    right: tuple[Side | None, PathFilter],
) -> Differences | None:
    """:func:`differences` from both trees' keys as arrays (see
    :mod:`zkdrift.store.keysets`), for views that leave no persistent node out and
    no ACL compared; None where the arrays cannot be had (the caller then compares
    row by row). Ancestors are not collected: the questions about them are
    answered by streams of paths (see :func:`ancestors_among`)."""
    sides: list[tuple[Side | None, keysets.KeyArrays]] = []
    for side, view in (left, right):
        keys = (
            keysets.no_keys()
            if side is None
            else keysets.key_arrays(session, side.kind, tree.id, side.id)
        )
        if keys is None:
            return None
        sides.append((side, keys.kept(view.keep_ephemeral)))
    (left_side, left_keys), (right_side, right_keys) = sides
    matched = keysets.match(left_keys, right_keys)

    def paths_at(side: Side | None, keys: keysets.KeyArrays, positions: Any) -> set[str]:
        if side is None or not len(positions):
            return set()
        digests = keys.digests(positions)
        return set(keysets.paths_of(session, side.kind, tree.id, side.id, digests))

    left_only = paths_at(left_side, left_keys, matched.left_only)
    right_only = paths_at(right_side, right_keys, matched.right_only)
    changed = paths_at(right_side, right_keys, matched.changed)
    return _loaded(
        session,
        tree,
        (left_side, left_only, _counted(tree.root, left_keys)),
        (right_side, right_only, _counted(tree.root, right_keys)),
        changed,
    )


def _counted(root: str, keys: keysets.KeyArrays) -> Counts:
    """:class:`Counts` of the nodes ``keys`` holds (no ancestors collected)."""
    at = keys.find(root)
    has_root = at >= 0
    has_persistent_root = has_root and not bool(keys.ephemeral[at])
    nodes = len(keys)
    persistent = nodes - int(keys.ephemeral.sum())
    return Counts(
        root,
        nodes=nodes,
        below_root=nodes - has_root,
        persistent=persistent,
        persistent_below_root=persistent - has_persistent_root,
    )
