"""Comparing two recorded trees (snapshots or desired revisions) without loading them.

Both trees stream out of the store in path digest order, a chunk at a time,
through the tree's scope (:class:`~zkdrift.scope.PathFilter`); the pure merge
(:func:`zkdrift.diff.differing`) keeps only the paths that differ, and only
those are loaded whole. Memory follows the size of the difference, not the
size of the trees.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from zkdrift.diff import NodeKey, differing
from zkdrift.model import Znode
from zkdrift.scope import PathFilter
from zkdrift.store import desired as desired_store
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


@dataclass
class Counts:
    """How many nodes of one side a view kept: all, persistent, and below ``root``."""

    root: str
    nodes: int = 0
    below_root: int = 0
    persistent: int = 0
    persistent_below_root: int = 0

    def counted(self, rows: Iterable[NodeKey], view: PathFilter) -> Iterator[NodeKey]:
        root = self.root
        keeps_all = view.keeps_every_persistent_node
        for row in rows:
            path, ephemeral = row[1], row[4]
            if not (keeps_all and not ephemeral) and not view(path, ephemeral):
                continue
            below = path != root
            self.nodes += 1
            self.below_root += below
            if not ephemeral:
                self.persistent += 1
                self.persistent_below_root += below
            yield row


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
) -> Differences:
    """Where ``left`` and ``right`` differ, as their views see them (see
    :func:`zkdrift.diff.differing` for what differs)."""
    left_counts = Counts(tree.root)
    right_counts = Counts(tree.root)
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
    every = changed | left_only | right_only
    return Differences(
        left=load(session, tree, left, every),
        right=load(session, tree, right, every),
        left_only=left_only,
        right_only=right_only,
        left_counts=left_counts,
        right_counts=right_counts,
        paths=every,
    )
