"""Plans: the ordered writes that make live equal desired, and their guards.

Pure functions: no I/O. The writer executes what these produce, with
compare-and-set on the versions recorded here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from zkdrift.diff import acl_differs
from zkdrift.errors import InvalidInputError
from zkdrift.model import Acl, Op, OpKind, Plan, TreeState, Znode, digest
from zkdrift.paths import (
    ancestors,
    basename,
    depth,
    is_under,
    matches_self_or_ancestor,
    parent_of,
    validate_path,
)
from zkdrift.policy import DEFAULT_MAX_DELETE_FRACTION, MAX_OP_BYTES

# ZooKeeper appends a zero-padded 10-digit counter to sequential node names.
_SEQUENTIAL_SUFFIX = re.compile(r"[0-9]{10}\Z")

# Paths listed in one warning or refusal before "and N more".
_LIST_LIMIT = 5

# Rough serialized-size overheads for batching, in bytes (jute framing,
# op header, version, flags).
OP_OVERHEAD = 64
ACL_ENTRY_OVERHEAD = 16


def _nodes(state: TreeState | Mapping[str, Znode]) -> Mapping[str, Znode]:
    return state.nodes if isinstance(state, TreeState) else state


def _summarise(paths: Iterable[str], limit: int = _LIST_LIMIT) -> str:
    ordered = sorted(paths)
    shown = ", ".join(ordered[:limit])
    if len(ordered) > limit:
        shown += f" and {len(ordered) - limit} more"
    return shown


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _verb(n: int, singular: str, plural: str) -> str:
    return singular if n == 1 else plural


def looks_sequential(path: str) -> bool:
    """True when the last segment ends in ZooKeeper's 10-digit sequential suffix."""
    return _SEQUENTIAL_SUFFIX.search(basename(path)) is not None


@dataclass(frozen=True)
class Surroundings:
    """What a plan needs to know of the nodes it was not given.

    A plan of a tree too large to hold is made from the differing paths only
    (see :func:`zkdrift.diff.differing`); these answer the questions that
    reach beyond them:

    - ``existing``: of the paths a plan might create (the desired paths missing
      live and their ancestors), those that exist live as ancestors of live
      nodes (the root ``/`` always does);
    - ``needed``: of the live paths desired lacks, those that are ancestors of
      desired paths (never deleted).
    """

    existing: Container[str]
    needed: Container[str]


@dataclass(frozen=True, slots=True)
class TreeCounts:
    """The sizes :func:`check_guards` weighs, counted while the trees streamed past.

    ``desired`` counts the managed desired nodes, ``persistent`` the persistent
    nodes the plan sees live; the ``_below_root`` counts leave the root out.
    """

    desired: int
    desired_below_root: int
    persistent: int
    persistent_below_root: int


def make_plan(
    tree: str,
    desired: TreeState | Mapping[str, Znode],
    live: TreeState | Mapping[str, Znode],
    *,
    prune: bool = False,
    compare_acl: bool = False,
    root: str = "/",
    parent_acls: Mapping[str, tuple[Acl, ...]] | None = None,
    default_acl: tuple[Acl, ...] | None = None,
    surroundings: Surroundings | None = None,
) -> Plan:
    """Plan the writes that make ``live`` equal ``desired`` under ``root``.

    Ops come in this order, each group sorted:

    1. ``CREATE`` for desired paths missing live, parents before children
       (by depth, then path). A missing parent that desired does not list is
       created with empty data and a warning; parents are created up to and
       including ``root``, never above it (those must exist). ``create``
       carries no expected version, and always an ACL: the desired node's
       own, else ``default_acl``, else the ACL of its parent (one created
       by the plan, or an existing one from ``parent_acls``, see
       :func:`acl_sources`, or from ``live`` when it was read with ACLs).
       A create whose ACL is unknown carries None, which
       :func:`check_guards` refuses.
    2. ``SET`` where data differs, against the live data version.
    3. ``SET_ACL`` with ``compare_acl``, where both sides read an ACL and
       they differ as sets, against the live ACL version (``aversion``).
    4. ``DELETE`` with ``prune`` only, for live paths under ``root`` that
       desired lacks, deepest first, against the live data version. The
       root, ancestors of nodes that stay, and ephemeral nodes are never
       deleted. Without ``prune`` the count of such paths is a warning.

    A path counts as existing live when it is in ``live`` or is an ancestor
    of a path in ``live``. Ephemeral live nodes are never written; a
    difference on one is a warning. A desired path that is missing live and
    ends in ten digits looks like a sequential node: ZooKeeper cannot
    re-create one under the same name with the sequential flag, so it is
    planned as a plain (persistent, non-sequential) create of that exact
    name, with a warning.

    Raises :class:`zkdrift.paths.InvalidPathError` for an invalid path to
    create and :class:`~zkdrift.errors.InvalidInputError` for a desired
    path outside ``root``.

    With ``surroundings``, ``desired`` and ``live`` may hold only the paths
    that differ (both sides of each, when it has them, plus the live parents
    that created nodes inherit an ACL from): the plan is the one the whole
    trees would give.
    """
    validate_path(root)
    desired_nodes = _nodes(desired)
    live_nodes = _nodes(live)
    warnings: list[str] = []

    outside = [p for p in desired_nodes if not is_under(p, root)]
    if outside:
        raise InvalidInputError(
            f"desired state of tree {tree!r} has paths outside its root {root}:"
            f" {_summarise(outside)}"
        )

    exists = _existing_in(live_nodes, surroundings)

    # -- creates --------------------------------------------------------
    creates, intermediates = _creates(desired_nodes, exists, root)
    if intermediates:
        warnings.append(
            f"creating {_plural(len(intermediates), 'missing parent node')} with empty data"
            f" (not in desired): {_summarise(intermediates)}"
        )
    if root in creates or root in intermediates:
        warnings.append(f"tree root {root} does not exist live: it will be created")
    sequential = [p for p in creates if looks_sequential(p)]
    if sequential:
        warnings.append(
            "sequential nodes cannot be re-created under their name; creating"
            f" {_plural(len(sequential), 'path')} with a 10-digit suffix as plain nodes"
            f" of that exact name: {_summarise(sequential)}"
        )

    ops: list[Op] = []
    known_acls: dict[str, tuple[Acl, ...] | None] = dict(parent_acls or {})
    for p in sorted(creates | intermediates, key=lambda p: (depth(p), p)):
        node = desired_nodes.get(p)
        data = b"" if node is None else node.data
        if node is not None and node.acl is not None:
            acl: tuple[Acl, ...] | None = node.acl
        elif default_acl is not None:
            acl = default_acl
        else:
            parent = parent_of(p)
            parent_node = live_nodes.get(parent)
            acl = known_acls.get(parent, None if parent_node is None else parent_node.acl)
        known_acls[p] = acl
        ops.append(Op(OpKind.CREATE, p, data=data, acl=acl, after_digest=digest(data)))

    # -- sets and ACLs ----------------------------------------------------
    ephemeral_touched: list[str] = []
    acl_unread: list[str] = []
    set_ops: list[Op] = []
    acl_ops: list[Op] = []
    for p in sorted(desired_nodes.keys() & live_nodes.keys()):
        want = desired_nodes[p]
        have = live_nodes[p]
        data_differs = want.data != have.data
        acl_change = compare_acl and acl_differs(want, have)
        if compare_acl and want.acl is not None and have.acl is None:
            acl_unread.append(p)
        if not (data_differs or acl_change):
            continue
        if have.ephemeral:
            ephemeral_touched.append(p)
            continue
        if data_differs:
            set_ops.append(
                Op(
                    OpKind.SET,
                    p,
                    data=want.data,
                    expected_version=have.version,
                    before_digest=digest(have.data),
                    after_digest=digest(want.data),
                )
            )
        if acl_change:
            acl_ops.append(
                Op(
                    OpKind.SET_ACL,
                    p,
                    acl=want.acl,
                    expected_version=None if have.stat is None else have.stat.aversion,
                )
            )
    ops.extend(set_ops)
    ops.extend(acl_ops)
    if ephemeral_touched:
        warnings.append(
            f"not writing {_plural(len(ephemeral_touched), 'ephemeral node')} that"
            f" {_verb(len(ephemeral_touched), 'differs', 'differ')}"
            f" from desired: {_summarise(ephemeral_touched)}"
        )
    if acl_unread:
        warnings.append(
            f"ACLs were not read for {_plural(len(acl_unread), 'live node')}; their ACLs"
            f" are not compared: {_summarise(acl_unread)}"
        )

    # -- deletes ----------------------------------------------------------
    # Nodes that stay keep their ancestors: deleting a non-empty node would
    # fail the whole batch. Those are desired nodes, ephemeral ones (never
    # deleted), and children zkdrift did not read: a node whose stat counts
    # more children than live holds below it has children outside the
    # managed view (excluded, zkdrift's own, or created since).
    extra = [p for p in live_nodes if p not in desired_nodes and is_under(p, root) and p != root]
    ephemeral_extra = {p for p in extra if live_nodes[p].ephemeral}
    keep: Container[str]
    if surroundings is None:
        keep = _with_ancestors((), (*desired_nodes, *ephemeral_extra))
    else:
        keep = _Either(_with_ancestors((), ephemeral_extra), surroundings.needed)
    unseen = _with_unseen_children(live_nodes)
    kept_for_unseen = {p for p in _with_ancestors(unseen, unseen) if p not in keep}
    deletable = [
        p for p in extra if p not in keep and p not in ephemeral_extra and p not in kept_for_unseen
    ]
    if prune:
        for p in sorted(deletable, key=lambda p: (-depth(p), p)):
            have = live_nodes[p]
            ops.append(
                Op(
                    OpKind.DELETE,
                    p,
                    expected_version=have.version,
                    before_digest=digest(have.data),
                )
            )
        if ephemeral_extra:
            warnings.append(
                f"not deleting {_plural(len(ephemeral_extra), 'ephemeral node')}:"
                f" {_summarise(ephemeral_extra)}"
            )
        kept = sorted(p for p in extra if p in kept_for_unseen and p not in ephemeral_extra)
        if kept:
            warnings.append(
                f"not deleting {_plural(len(kept), 'node')} that"
                f" {_verb(len(kept), 'keeps', 'keep')} children zkdrift does not manage"
                f" (excluded, its own, or created since the read): {_summarise(kept)}"
            )
    elif deletable:
        warnings.append(
            f"{_plural(len(deletable), 'path')} {_verb(len(deletable), 'exists', 'exist')} live"
            " but not in desired; use --prune"
            f" to delete them: {_summarise(deletable)}"
        )
    return Plan(tree=tree, ops=tuple(ops), warnings=tuple(warnings))


def _existing_in(live: Mapping[str, Znode], surroundings: Surroundings | None) -> Container[str]:
    if surroundings is None:
        return _existing(live)
    return _Either(live, surroundings.existing)


class _Either(Container[str]):
    """Membership in either of two containers."""

    def __init__(self, first: Container[str], second: Container[str]) -> None:
        self.first = first
        self.second = second

    def __contains__(self, item: object) -> bool:
        return item in self.first or item in self.second


def _existing(live: Mapping[str, Znode]) -> set[str]:
    """Every path that exists live: the live nodes and all their ancestors (a reader
    that leaves out the root, or any parent, must not make us try to create it)."""
    exists: set[str] = set(live)
    exists.add("/")
    for p in live:
        for a in ancestors(p):
            if a in exists:
                break
            exists.add(a)
    return exists


def _creates(
    desired: Mapping[str, Znode], exists: Container[str], root: str
) -> tuple[set[str], set[str]]:
    """The desired paths missing live, and the missing parents they need below ``root``."""
    creates = {p for p in desired if p not in exists}
    for p in creates:
        validate_path(p)
    intermediates: set[str] = set()
    for p in creates:
        for a in ancestors(p):
            if a in exists or a in creates or a in intermediates or not is_under(a, root):
                break
            intermediates.add(a)
    return creates, intermediates


def acl_sources(
    desired: TreeState | Mapping[str, Znode],
    live: TreeState | Mapping[str, Znode],
    *,
    root: str = "/",
    surroundings: Surroundings | None = None,
) -> set[str]:
    """The existing nodes whose ACL the nodes a plan creates would inherit: the parent
    of each topmost create (read them before planning, see :func:`make_plan`)."""
    live_nodes = _nodes(live)
    exists = _existing_in(live_nodes, surroundings)
    creates, intermediates = _creates(_nodes(desired), exists, root)
    made = creates | intermediates
    return {parent_of(p) for p in made if parent_of(p) not in made}


def _with_unseen_children(live: Mapping[str, Znode]) -> set[str]:
    """Live nodes whose stat counts more children than ``live`` holds below them."""
    seen: dict[str, int] = {}
    for p in live:
        if p != "/":
            parent = parent_of(p)
            seen[parent] = seen.get(parent, 0) + 1
    return {
        p
        for p, node in live.items()
        if node.stat is not None and node.stat.num_children > seen.get(p, 0)
    }


def _with_ancestors(paths: Iterable[str], of: Iterable[str]) -> set[str]:
    """``paths`` plus every ancestor of the paths in ``of``."""
    out = set(paths)
    done: set[str] = set()
    for p in of:
        for a in ancestors(p):
            if a in done:
                break
            done.add(a)
    return out | done


def estimate_op_size(op: Op) -> int:
    """Rough serialized size of ``op`` in a ZooKeeper multi request, in bytes."""
    size = OP_OVERHEAD + len(op.path.encode("utf-8"))
    if op.data is not None:
        size += len(op.data)
    if op.acl is not None:
        for entry in op.acl:
            size += (
                len(entry.scheme.encode("utf-8"))
                + len(entry.id.encode("utf-8"))
                + ACL_ENTRY_OVERHEAD
            )
    return size


def batch_ops(
    ops: Iterable[Op], max_bytes: int = 512 * 1024, max_ops: int = 1000
) -> list[list[Op]]:
    """Split ``ops`` into transactions, keeping their order.

    Each batch holds at most ``max_ops`` ops and an estimated size (see
    :func:`estimate_op_size`) of at most ``max_bytes``. An op larger than
    ``max_bytes`` on its own gets a batch of its own; whether ZooKeeper
    accepts it is for ``jute.maxbuffer`` to say.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if max_ops <= 0:
        raise ValueError("max_ops must be positive")
    batches: list[list[Op]] = []
    current: list[Op] = []
    current_bytes = 0
    for op in ops:
        size = estimate_op_size(op)
        if current and (current_bytes + size > max_bytes or len(current) >= max_ops):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(op)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def check_guards(
    plan: Plan,
    desired: TreeState | Mapping[str, Znode],
    live: TreeState | Mapping[str, Znode] | None,
    *,
    root: str = "/",
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION,
    force: bool = False,
    protected: Sequence[str] = (),
    max_op_bytes: int = MAX_OP_BYTES,
    is_secret: Callable[[str], bool] | None = None,
    allow_world_readable_secrets: bool = False,
    counts: TreeCounts | None = None,
) -> list[str]:
    """Reasons not to apply ``plan``, one human-readable line each; empty means go.

    ``desired`` is what zkdrift manages of the desired state and ``live``
    the plan's view of live (managed nodes plus ephemeral ones), or None
    when the tree's ``root`` does not exist live.

    - the root is missing, or live holds nothing below it, while desired
      does: more likely a failed or misdirected read than a new tree.
      ``force`` allows it (bootstrapping a new tree).
    - more deletes than ``max_delete_fraction`` of the persistent live
      nodes. ``force`` allows it.
    - any op on a protected path: a path is protected when it or an
      ancestor matches one of the ``protected`` globs. ``force`` does not
      allow it.
    - any op on a path that is an ephemeral node live (a stored plan may
      name a node re-created as ephemeral since). ``force`` does not allow it.
    - any op larger (see :func:`estimate_op_size`) than ``max_op_bytes``:
      ZooKeeper would drop the connection halfway through the apply.
      ``force`` does not allow it.
    - any create without an ACL: ZooKeeper (and kazoo) would make the node
      readable and writable by anyone. ``force`` does not allow it.
    - any create or ACL change that leaves a secret path (``is_secret``)
      readable by ``world:anyone``, unless ``allow_world_readable_secrets``.
      ``force`` does not allow it.

    With ``counts``, ``desired`` and ``live`` need only hold the plan's paths
    (as :func:`make_plan` with surroundings takes them): the sizes come from
    ``counts``.
    """
    if not 0.0 <= max_delete_fraction <= 1.0:
        raise ValueError("max_delete_fraction must be between 0 and 1")
    desired_nodes = _nodes(desired)
    live_nodes: Mapping[str, Znode] = {} if live is None else _nodes(live)
    if counts is None:
        persistent = [p for p, n in live_nodes.items() if not n.ephemeral]
        counts = TreeCounts(
            desired=len(desired_nodes),
            desired_below_root=sum(1 for p in desired_nodes if p != root),
            persistent=len(persistent),
            persistent_below_root=sum(1 for p in persistent if p != root),
        )
    refusals: list[str] = []

    wanted = counts.desired_below_root
    if not force and counts.desired and not counts.persistent_below_root:
        if live is None:
            refusals.append(
                f"the tree root {root} does not exist live but desired has"
                f" {_plural(counts.desired, 'node')}: was the tree read correctly?"
                " (use --force to create it anyway)"
            )
        elif wanted:
            refusals.append(
                f"live tree is empty (only its root {root}) but desired has"
                f" {_plural(wanted, 'node')} below it: was the tree read correctly?"
                " (use --force to create them anyway)"
            )

    deletes = sum(1 for op in plan.ops if op.kind is OpKind.DELETE)
    if deletes and not force and deletes > max_delete_fraction * counts.persistent:
        refusals.append(
            f"plan deletes {_plural(deletes, 'node')} of {counts.persistent} live"
            f" ({deletes / max(counts.persistent, 1):.0%}), more than the allowed"
            f" {max_delete_fraction:.0%} (use --force to allow it)"
        )

    if protected:
        hits = {op.path for op in plan.ops if matches_self_or_ancestor(op.path, protected)}
        if hits:
            refusals.append(
                f"plan touches {_plural(len(hits), 'protected path')}: {_summarise(hits)}"
            )

    ephemeral = {
        op.path
        for op in plan.ops
        if (node := live_nodes.get(op.path)) is not None and node.ephemeral
    }
    if ephemeral:
        refusals.append(
            f"plan touches {_plural(len(ephemeral), 'ephemeral node')}: {_summarise(ephemeral)}"
        )

    oversized = sorted(
        (op.path, len(op.data or b"")) for op in plan.ops if estimate_op_size(op) > max_op_bytes
    )
    if oversized:
        shown = [f"{path} ({size} bytes)" for path, size in oversized]
        refusals.append(
            f"{_plural(len(oversized), 'value')} {_verb(len(oversized), 'is', 'are')} too large"
            " for one ZooKeeper request (jute.maxbuffer, 1 MiB by default):"
            f" {_summarise(shown)}"
        )

    no_acl = {op.path for op in plan.ops if op.kind is OpKind.CREATE and op.acl is None}
    if no_acl:
        refusals.append(
            f"{_plural(len(no_acl), 'node')} would be created without a known ACL (ZooKeeper"
            " would make them open to anyone): set one with 'zkdrift tree set --default-acl'"
            f" or in the desired state: {_summarise(no_acl)}"
        )
    if is_secret is not None and not allow_world_readable_secrets:
        exposed = {
            op.path
            for op in plan.ops
            if op.kind in (OpKind.CREATE, OpKind.SET_ACL)
            and op.acl is not None
            and any(a.world_readable for a in op.acl)
            and is_secret(op.path)
        }
        if exposed:
            refusals.append(
                f"{_plural(len(exposed), 'secret path')} would be readable by anyone"
                " (world:anyone:r): give them an ACL (tree set --default-acl, or an acl in"
                " the desired state) or allow it with 'zkdrift tree set"
                f" --allow-world-readable-secrets': {_summarise(exposed)}"
            )
    return refusals
