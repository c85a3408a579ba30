"""The audit trail: every apply and adopt, who ran it, why, and what each op did.

An apply is recorded as it goes: :func:`start` commits a ``running`` row
before anything touches ZooKeeper, :func:`put_ops` records ops as their
fate is decided (each batch before it is sent and after it commits), and
:func:`finish` fills in the outcome. A run that dies in between stays
visible as ``running`` with every op it got to. Values are never recorded,
only their digests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from zkdrift.store.bulk import insert_plain
from zkdrift.store.models import Apply, ApplyOp, Tree, utcnow
from zkdrift.vocabulary import iso


@dataclass(frozen=True)
class OpRecord:
    kind: str
    path: str
    expected_version: int | None
    before_digest: str | None
    after_digest: str | None
    outcome: str
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    tree: str
    direction: str
    actor: str
    reason: str
    host: str
    lock_identifier: str
    plan_id: int | None
    desired_revision_id: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    error: str | None
    ops_total: int
    ops_applied: int
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "apply_id": self.id,
            "tree": self.tree,
            "direction": self.direction,
            "dry_run": self.dry_run,
            "actor": self.actor,
            "reason": self.reason,
            "host": self.host,
            "plan_id": self.plan_id,
            "desired_revision_id": self.desired_revision_id,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "outcome": self.outcome,
            "ops_total": self.ops_total,
            "ops_applied": self.ops_applied,
            "error": self.error,
        }


def start(
    session: Session,
    tree: Tree,
    *,
    direction: str,
    actor: str,
    reason: str,
    host: str,
    dry_run: bool = False,
) -> Apply:
    row = Apply(
        tree_id=tree.id,
        direction=direction,
        actor=actor,
        reason=reason,
        host=host,
        started_at=utcnow(),
        outcome="running",
        dry_run=dry_run,
    )
    session.add(row)
    session.flush()
    return row


def finish(
    session: Session,
    apply_id: int,
    *,
    outcome: str,
    error: str | None = None,
    plan_id: int | None = None,
    desired_revision_id: int | None = None,
    lock_identifier: str | None = None,
    ops_total: int = 0,
    ops_applied: int = 0,
) -> None:
    progress(
        session,
        apply_id,
        plan_id=plan_id,
        desired_revision_id=desired_revision_id,
        lock_identifier=lock_identifier,
        ops_total=ops_total,
        ops_applied=ops_applied,
    )
    row = _row(session, apply_id)
    row.outcome = outcome
    row.error = error
    row.finished_at = utcnow()
    session.flush()


def _row(session: Session, apply_id: int) -> Apply:
    row = session.get(Apply, apply_id)
    if row is None:  # pragma: no cover - the row was committed by start()
        raise LookupError(f"apply {apply_id} is not recorded")
    return row


def progress(
    session: Session,
    apply_id: int,
    *,
    plan_id: int | None,
    desired_revision_id: int | None,
    lock_identifier: str | None,
    ops_total: int,
    ops_applied: int,
) -> None:
    """What a running apply has got to, recorded before it finishes."""
    row = _row(session, apply_id)
    row.plan_id = plan_id
    row.desired_revision_id = desired_revision_id
    if lock_identifier is not None:
        row.lock_identifier = lock_identifier[:500]
    row.ops_total = ops_total
    row.ops_applied = ops_applied
    session.flush()


def put_ops(session: Session, apply_id: int, first: int, ops: Sequence[OpRecord]) -> None:
    """Record ``ops`` as the apply's ops ``first``, ``first + 1``, ...; replacing what
    was recorded for them before."""
    if not ops:
        return
    last = first + len(ops) - 1
    session.execute(
        delete(ApplyOp).where(
            ApplyOp.apply_id == apply_id, ApplyOp.seq >= first, ApplyOp.seq <= last
        )
    )
    rows = [
        (
            apply_id,
            seq,
            op.kind,
            op.path,
            op.expected_version,
            None if op.before_digest is None else bytes.fromhex(op.before_digest),
            None if op.after_digest is None else bytes.fromhex(op.after_digest),
            op.outcome,
            op.error,
        )
        for seq, op in enumerate(ops, start=first)
    ]
    insert_plain(session, "apply_ops", _OP_COLUMNS, rows)


_OP_COLUMNS = (
    "apply_id",
    "seq",
    "kind",
    "path",
    "expected_version",
    "before_digest",
    "after_digest",
    "outcome",
    "error",
)


def unsettled(session: Session, tree: Tree, before: int) -> list[Apply]:
    """The tree's applies (not dry runs) older than ``before`` whose outcome is not
    settled: still ``running`` (the process died), or with ops of unknown fate."""
    unknown = select(ApplyOp.apply_id).where(ApplyOp.outcome == "unknown")
    query = (
        select(Apply)
        .where(
            Apply.tree_id == tree.id,
            Apply.id < before,
            Apply.dry_run.is_(False),
            (Apply.outcome == "running") | Apply.id.in_(unknown),
        )
        .order_by(Apply.id)
    )
    return list(session.scalars(query))


def _entry(row: Apply, tree_name: str) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        tree=tree_name,
        direction=row.direction,
        actor=row.actor,
        reason=row.reason,
        host=row.host,
        lock_identifier=row.lock_identifier,
        plan_id=row.plan_id,
        desired_revision_id=row.desired_revision_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        error=row.error,
        ops_total=row.ops_total,
        ops_applied=row.ops_applied,
        dry_run=row.dry_run,
    )


def list_entries(
    session: Session, tree: Tree, *, limit: int | None = None, include_dry_runs: bool = True
) -> list[AuditEntry]:
    """The tree's applies and adopts, newest first."""
    query = select(Apply).where(Apply.tree_id == tree.id)
    if not include_dry_runs:
        query = query.where(Apply.dry_run.is_(False))
    query = query.order_by(Apply.id.desc())
    if limit:
        query = query.limit(limit)
    return [_entry(r, tree.name) for r in session.scalars(query)]


def get_entry(session: Session, tree: Tree, apply_id: int) -> AuditEntry | None:
    row = session.get(Apply, apply_id)
    if row is None or row.tree_id != tree.id:
        return None
    return _entry(row, tree.name)


def _record(r: ApplyOp) -> OpRecord:
    return OpRecord(
        kind=r.kind,
        path=r.path,
        expected_version=r.expected_version,
        before_digest=r.before_digest,
        after_digest=r.after_digest,
        outcome=r.outcome,
        error=r.error,
    )


def entry_ops(session: Session, apply_id: int) -> Sequence[OpRecord]:
    rows = session.scalars(
        select(ApplyOp).where(ApplyOp.apply_id == apply_id).order_by(ApplyOp.seq)
    )
    return [_record(r) for r in rows]


def unknown_ops(session: Session, apply_id: int) -> dict[int, OpRecord]:
    """The apply's ops of unknown fate, by sequence number."""
    rows = session.scalars(
        select(ApplyOp)
        .where(ApplyOp.apply_id == apply_id, ApplyOp.outcome == "unknown")
        .order_by(ApplyOp.seq)
    )
    return {r.seq: _record(r) for r in rows}


def settle(
    session: Session,
    apply_id: int,
    decided: dict[int, tuple[str, str]],
    *,
    outcome: str | None,
    note: str,
) -> None:
    """Record what became of ops of unknown fate (``seq -> (outcome, error)``), recount
    the applied ops, and close a row left ``running`` as ``outcome``."""
    for seq, (op_outcome, error) in decided.items():
        session.execute(
            update(ApplyOp)
            .where(ApplyOp.apply_id == apply_id, ApplyOp.seq == seq)
            .values(outcome=op_outcome, error=error)
        )
    row = _row(session, apply_id)
    session.flush()
    row.ops_applied = (
        session.scalar(
            select(func.count())
            .select_from(ApplyOp)
            .where(ApplyOp.apply_id == apply_id, ApplyOp.outcome == "applied")
        )
        or 0
    )
    if outcome is not None:
        row.outcome = outcome
        row.finished_at = row.finished_at or utcnow()
    row.error = note if not row.error else f"{row.error}; {note}"
    session.flush()
