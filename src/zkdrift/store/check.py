"""Integrity of the stored history: what ``zkdrift db check`` verifies.

- every path has at most one open row (``valid_to IS NULL``) per tree, in
  snapshots and in desired state;
- every row's range is well formed (``valid_to`` after ``valid_from``);
- every snapshot rebuilds to the node count it recorded, and every desired
  revision to its entry count;
- every value a row refers to is stored, and every value held in a row is as
  long as the row says and no longer than :data:`INLINE_MAX`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from zkdrift.store.models import (
    INLINE_MAX,
    Blob,
    Configuration,
    DesiredRevision,
    NodeState,
    PlanOp,
    Snapshot,
    Tree,
)

# Examples named per problem; the count says how many there are in all.
EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    tree: str | None
    check: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"tree": self.tree, "check": self.check, "message": self.message}


def _names(session: Session) -> dict[int, str]:
    return {tree_id: name for tree_id, name in session.execute(select(Tree.id, Tree.name))}


def _duplicate_open_rows(session: Session, model: Any, what: str) -> list[Problem]:
    names = _names(session)
    rows = session.execute(
        select(model.tree_id, func.count(), func.min(model.path))
        .where(model.valid_to.is_(None))
        .group_by(model.tree_id, model.path_digest)
        .having(func.count() > 1)
    ).all()
    per_tree: dict[int, list[str]] = {}
    for tree_id, _count, path in rows:
        per_tree.setdefault(tree_id, []).append(path)
    return [
        Problem(
            names.get(tree_id),
            "open rows",
            f"{len(paths)} path(s) have more than one open {what} row, e.g."
            f" {', '.join(sorted(paths)[:EXAMPLES])}",
        )
        for tree_id, paths in sorted(per_tree.items())
    ]


def _bad_ranges(session: Session, model: Any, what: str) -> list[Problem]:
    count = session.scalar(
        select(func.count())
        .select_from(model)
        .where(model.valid_to.is_not(None), model.valid_to <= model.valid_from)
    )
    if not count:
        return []
    return [Problem(None, "ranges", f"{count} {what} row(s) end before they begin")]


def _rebuild_counts(session: Session) -> list[Problem]:
    names = _names(session)
    problems: list[Problem] = []
    n = aliased(NodeState)
    held = (
        select(func.count())
        .where(
            n.tree_id == Snapshot.tree_id,
            n.valid_from <= Snapshot.id,
            or_(n.valid_to.is_(None), n.valid_to > Snapshot.id),
        )
        .correlate(Snapshot)
        .scalar_subquery()
    )
    for sid, tree_id, recorded, rebuilt in session.execute(
        select(Snapshot.id, Snapshot.tree_id, Snapshot.node_count, held).order_by(Snapshot.id)
    ):
        if recorded != rebuilt:
            problems.append(
                Problem(
                    names.get(tree_id),
                    "rebuild",
                    f"snapshot {sid} recorded {recorded} nodes but rebuilds to {rebuilt}",
                )
            )
    c = aliased(Configuration)
    entries = (
        select(func.count())
        .where(
            c.tree_id == DesiredRevision.tree_id,
            c.valid_from <= DesiredRevision.id,
            or_(c.valid_to.is_(None), c.valid_to > DesiredRevision.id),
        )
        .correlate(DesiredRevision)
        .scalar_subquery()
    )
    for number, tree_id, recorded, rebuilt in session.execute(
        select(
            DesiredRevision.number,
            DesiredRevision.tree_id,
            DesiredRevision.entry_count,
            entries,
        ).order_by(DesiredRevision.id)
    ):
        if recorded != rebuilt:
            problems.append(
                Problem(
                    names.get(tree_id),
                    "rebuild",
                    f"desired revision {number} recorded {recorded} entries but rebuilds to"
                    f" {rebuilt}",
                )
            )
    return problems


def _missing_values(session: Session) -> list[Problem]:
    problems: list[Problem] = []
    models: tuple[tuple[Any, str], ...] = (
        (NodeState, "snapshot"),
        (Configuration, "desired"),
        (PlanOp, "plan"),
    )
    for model, what in models:
        missing = session.execute(
            select(model.data_digest)
            .outerjoin(Blob, Blob.digest == model.data_digest)
            .where(
                and_(
                    model.data_digest.is_not(None),
                    # Values up to INLINE_MAX are held in the row itself.
                    model.data.is_(None) if model is not PlanOp else true(),
                    Blob.digest.is_(None),
                )
            )
            .distinct()
            .limit(EXAMPLES + 1)
        ).scalars()
        digests = [d for d in missing if d is not None]
        if digests:
            problems.append(
                Problem(
                    None,
                    "values",
                    f"{what} rows refer to values that are not stored, e.g."
                    f" {', '.join(d[:12] for d in digests[:EXAMPLES])}",
                )
            )
    return problems


def _inline_values(session: Session) -> list[Problem]:
    """Values held in the row (up to INLINE_MAX bytes) whose length is not the
    recorded ``data_length``, or that are too long to be held there."""
    names = _names(session)
    problems: list[Problem] = []
    for model, what in ((NodeState, "snapshot"), (Configuration, "desired-state")):
        rows = session.execute(
            select(model.tree_id, func.count(), func.min(model.path))
            .where(
                model.data.is_not(None),
                or_(
                    func.length(model.data) != model.data_length,
                    model.data_length > INLINE_MAX,
                ),
            )
            .group_by(model.tree_id)
        ).all()
        problems.extend(
            Problem(
                names.get(tree_id),
                "values",
                f"{count} {what} rows hold a value whose length is not the length recorded"
                f" with it, or is over {INLINE_MAX} bytes, e.g. {path}",
            )
            for tree_id, count, path in rows
        )
    return problems


def check_database(session: Session) -> list[Problem]:
    """Every integrity problem of the stored history; empty when it is sound."""
    return [
        *_duplicate_open_rows(session, NodeState, "snapshot"),
        *_duplicate_open_rows(session, Configuration, "desired-state"),
        *_bad_ranges(session, NodeState, "snapshot"),
        *_bad_ranges(session, Configuration, "desired-state"),
        *_rebuild_counts(session),
        *_missing_values(session),
        *_inline_values(session),
    ]
