"""Differences between tree states, and three-way drift classification.

Pure functions: no I/O. Values are compared as bytes and never decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

from zkdrift.model import Change, ChangeKind, DriftClass, TreeState, Znode
from zkdrift.paths import ancestors

# Within one path, changes are reported in this order.
_KIND_ORDER = {
    ChangeKind.ADDED: 0,
    ChangeKind.REMOVED: 1,
    ChangeKind.DATA_CHANGED: 2,
    ChangeKind.ACL_CHANGED: 3,
}


def _nodes(state: TreeState | Mapping[str, Znode]) -> Mapping[str, Znode]:
    # Going through TreeState.__getitem__ for every node costs a Python call
    # each; its backing mapping answers the same questions directly.
    return state.nodes if isinstance(state, TreeState) else state


def acl_differs(a: Znode, b: Znode) -> bool:
    """True when both nodes carry an ACL and the ACLs differ as sets.

    An ACL of ``None`` means "not read", which is never a difference.
    """
    if a.acl is None or b.acl is None or a.acl == b.acl:
        return False
    return set(a.acl) != set(b.acl)


def diff(
    before: TreeState | Mapping[str, Znode],
    after: TreeState | Mapping[str, Znode],
    *,
    compare_acl: bool = False,
) -> list[Change]:
    """Every difference from ``before`` to ``after``, sorted by path.

    - ``ADDED``: the path is only in ``after``.
    - ``REMOVED``: the path is only in ``before``.
    - ``DATA_CHANGED``: the data bytes differ.
    - ``ACL_CHANGED``: only with ``compare_acl``, when both sides read an ACL
      (not ``None``) and the ACLs differ as sets (entry order is irrelevant).

    A node whose data and ACL both differ yields two changes, data first.
    Paths sort as plain strings (code point order), so ``"/a b"`` comes
    before ``"/a/b"``. Stat differences (versions, times) are not changes.
    """
    b_nodes = _nodes(before)
    a_nodes = _nodes(after)
    b_keys = b_nodes.keys()
    a_keys = a_nodes.keys()

    changes: list[Change] = [Change(ChangeKind.ADDED, p, None, a_nodes[p]) for p in a_keys - b_keys]
    changes.extend(Change(ChangeKind.REMOVED, p, b_nodes[p], None) for p in b_keys - a_keys)
    for p in b_keys & a_keys:
        b = b_nodes[p]
        a = a_nodes[p]
        if b.data != a.data:
            changes.append(Change(ChangeKind.DATA_CHANGED, p, b, a))
        if compare_acl and acl_differs(b, a):
            changes.append(Change(ChangeKind.ACL_CHANGED, p, b, a))
    changes.sort(key=lambda c: (c.path, _KIND_ORDER[c.kind]))
    return changes


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference between desired and live, classified against the base.

    ``kind`` is what an apply would do to live: ``ADDED`` means desired has
    the path and live does not; ``REMOVED`` means live has a path desired
    lacks. ``base`` is what zkdrift last applied at this path, if anything.
    """

    path: str
    classification: DriftClass
    kind: ChangeKind
    desired: Znode | None
    live: Znode | None
    base: Znode | None


def _data_of(node: Znode | None) -> bytes | None:
    return None if node is None else node.data


def _acl_of(node: Znode | None) -> Hashable:
    return None if node is None or node.acl is None else frozenset(node.acl)


def _three_way(live_changed: bool, desired_changed: bool) -> DriftClass:
    if live_changed and desired_changed:
        return DriftClass.CONFLICT
    if desired_changed:
        return DriftClass.PENDING
    return DriftClass.DRIFT


def classify(
    base: TreeState | Mapping[str, Znode] | None,
    desired: TreeState | Mapping[str, Znode],
    live: TreeState | Mapping[str, Znode],
    *,
    compare_acl: bool = False,
    never_applied: bool | None = None,
) -> list[DriftItem]:
    """Classify every difference between ``desired`` and ``live``.

    ``base`` is what zkdrift last applied. Each difference is one aspect of
    one path (its presence, its data or its ACL), exactly as :func:`diff`
    from live to desired reports it; the aspect is compared against base:

    - live differs from base, desired does not: ``DRIFT`` (changed outside
      zkdrift);
    - desired differs from base, live does not: ``PENDING`` (not applied yet);
    - both differ from base: ``CONFLICT``.

    An absent node counts as a value of its own, so a path missing from
    base that both desired and live now hold with different data is a
    ``CONFLICT``, and one only desired holds is ``PENDING``.

    When there is no base at all (``None`` or empty: the tree was never
    applied), desired is authoritative and every difference is ``DRIFT``:
    live is not what it should be and nothing says who moved. The same rule
    covers an ACL difference whose base node has no recorded ACL.

    Results are sorted like :func:`diff`: by path, then presence, data, ACL.

    ``never_applied`` overrides "no base at all" when the three states are
    only the differing paths of larger ones (see :func:`differing`): then an
    empty ``base`` may just hold none of them.
    """
    base_nodes: Mapping[str, Znode] = {} if base is None else _nodes(base)
    if never_applied is None:
        never_applied = not base_nodes
    items: list[DriftItem] = []
    for change in diff(live, desired, compare_acl=compare_acl):
        path = change.path
        live_node, desired_node = change.before, change.after
        base_node = base_nodes.get(path)
        if never_applied:
            cls = DriftClass.DRIFT
        elif change.kind is ChangeKind.ACL_CHANGED:
            if base_node is None or base_node.acl is None:
                cls = DriftClass.DRIFT
            else:
                cls = _classify_aspect(_acl_of, base_node, desired_node, live_node)
        else:
            # Presence and data are one aspect: an absent node has no data.
            cls = _classify_aspect(_data_of, base_node, desired_node, live_node)
        items.append(DriftItem(path, cls, change.kind, desired_node, live_node, base_node))
    return items


def _classify_aspect(
    value: Callable[[Znode | None], Hashable],
    base: Znode | None,
    desired: Znode | None,
    live: Znode | None,
) -> DriftClass:
    b = value(base)
    return _three_way(value(live) != b, value(desired) != b)


def without_required_parents(
    items: list[DriftItem], desired: TreeState | Mapping[str, Znode]
) -> list[DriftItem]:
    """``items`` less the live-only nodes that desired paths need as parents.

    A desired ``/app/db/url`` needs ``/app/db`` to exist, listed or not: an
    apply creates such a parent and never deletes it, so it is no drift.
    """
    needed: set[str] = set()
    for path in _nodes(desired):
        for parent in ancestors(path):
            if parent in needed:
                break
            needed.add(parent)
    return without_paths(items, needed)


def without_paths(items: list[DriftItem], needed: Container[str]) -> list[DriftItem]:
    """``items`` less the live-only nodes at ``needed`` paths (parents desired needs)."""
    return [i for i in items if not (i.kind is ChangeKind.REMOVED and i.path in needed)]


# -- streams ------------------------------------------------------------------------
#
# A tree too large to hold is compared as two streams of keys, one row per node:
# (order key, path, data digest, ACL, ephemeral). The order key is the path's digest
# as the store sorts it; a data digest is opaque (equal digests, equal bytes); the ACL
# is a frozenset of (perms, scheme, id) triples, or None when it was not read. Only
# the rows that differ come out; the caller loads those nodes whole and hands them
# to the functions above, which then see every difference there is.

NodeKey = tuple[Any, str, Hashable, frozenset[tuple[int, str, str]] | None, bool]


class UnorderedStreamError(ValueError):
    """A stream of node keys was not sorted by its order key."""


def differing(
    left: Iterable[NodeKey],
    right: Iterable[NodeKey],
    *,
    compare_acl: bool = False,
    unread_acl: bool = False,
) -> Iterator[tuple[NodeKey | None, NodeKey | None]]:
    """Merge two key streams sorted by order key; yield the pairs that differ.

    A pair differs when its path is on one side only, its data digests differ,
    or, with ``compare_acl``, both sides read an ACL and they differ as sets.
    With ``unread_acl``, a path whose left side read an ACL and right side did
    not comes out too (a plan warns about those). Equal pairs are skipped, so
    memory holds one row per side whatever the size of the streams.

    Raises :class:`UnorderedStreamError` when a stream is not strictly increasing.
    """
    lit = iter(left)
    rit = iter(right)
    lrow = next(lit, None)
    rrow = next(rit, None)
    # The hot loop of a comparison of millions of rows: the order checks are inline.
    while lrow is not None and rrow is not None:
        lkey, rkey = lrow[0], rrow[0]
        if lkey < rkey:
            yield lrow, None
            previous, lrow = lrow, next(lit, None)
            if lrow is not None and not lkey < lrow[0]:
                _out_of_order(lrow, previous)
        elif rkey < lkey:
            yield None, rrow
            previous, rrow = rrow, next(rit, None)
            if rrow is not None and not rkey < rrow[0]:
                _out_of_order(rrow, previous)
        else:
            if lrow[2] != rrow[2] or (
                (compare_acl or unread_acl)
                and _acls_differ(lrow[3], rrow[3], compare_acl=compare_acl, unread_acl=unread_acl)
            ):
                yield lrow, rrow
            previous, lrow = lrow, next(lit, None)
            if lrow is not None and not lkey < lrow[0]:
                _out_of_order(lrow, previous)
            previous, rrow = rrow, next(rit, None)
            if rrow is not None and not rkey < rrow[0]:
                _out_of_order(rrow, previous)
    while lrow is not None:
        yield lrow, None
        lrow = _advance(lit, lrow)
    while rrow is not None:
        yield None, rrow
        rrow = _advance(rit, rrow)


def _acls_differ(
    lacl: frozenset[tuple[int, str, str]] | None,
    racl: frozenset[tuple[int, str, str]] | None,
    *,
    compare_acl: bool,
    unread_acl: bool,
) -> bool:
    return (compare_acl and lacl is not None and racl is not None and lacl != racl) or (
        unread_acl and lacl is not None and racl is None
    )


def _out_of_order(row: NodeKey, previous: NodeKey) -> None:
    raise UnorderedStreamError(f"node keys out of order: {row[1]!r} came after {previous[1]!r}")


def _advance(it: Iterator[NodeKey], previous: NodeKey) -> NodeKey | None:
    row = next(it, None)
    if row is not None and not previous[0] < row[0]:
        _out_of_order(row, previous)
    return row


def covered(
    targets: Set[str], paths: Iterable[str], *, strict: bool = True, cache_size: int = 65536
) -> set[str]:
    """The ``targets`` that are ancestors of a path in ``paths`` (or, unless ``strict``,
    one of them), streaming ``paths`` once and stopping when every target is found.

    Siblings share their ancestors: the targets above each parent are remembered,
    up to ``cache_size`` parents.
    """
    found: set[str] = set()
    if not targets:
        return found
    above: dict[str, tuple[str, ...]] = {}
    for path in paths:
        if path == "/":
            hits: tuple[str, ...] = ()
        else:
            parent = path[: path.rfind("/")] or "/"
            cached = above.get(parent)
            if cached is None:
                cached = tuple(a for a in (parent, *ancestors(parent)) if a in targets)
                if len(above) >= cache_size:
                    above.clear()
                above[parent] = cached
            hits = cached
        if not strict and path in targets:
            hits = (*hits, path)
        if hits:
            found.update(hits)
            if len(found) == len(targets):
                break
    return found
