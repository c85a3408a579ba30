"""Persisted plans: the ops, with the versions they were planned against.

Op data is stored once by digest in ``blobs``, like every other value; a
plan row and its ops hold digests, versions and ACLs only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from zkdrift.errors import InvalidInputError
from zkdrift.model import Op, OpKind, Plan, digest
from zkdrift.store.blobs import load_blobs, store_blobs
from zkdrift.store.bulk import bulk_insert
from zkdrift.store.models import PlanOp, PlanRecord, Tree
from zkdrift.store.snapshots import acl_from_json, acl_to_json


class UnknownPlanError(InvalidInputError):
    pass


@dataclass(frozen=True)
class StoredPlan:
    id: int
    tree: str
    snapshot_id: int | None
    desired_revision_id: int | None
    prune: bool
    status: str
    plan: Plan


def save_plan(
    session: Session,
    tree: Tree,
    plan: Plan,
    *,
    snapshot_id: int | None,
    desired_revision_id: int | None,
    prune: bool,
    created_by: str,
    status: str,
) -> PlanRecord:
    """Record ``plan`` and its ops in the session's transaction."""
    record = PlanRecord(
        tree_id=tree.id,
        snapshot_id=snapshot_id,
        desired_revision_id=desired_revision_id,
        created_by=created_by,
        prune=prune,
        status=status,
        op_count=len(plan.ops),
        warnings=list(plan.warnings),
    )
    session.add(record)
    session.flush()
    values: dict[str, bytes] = {}
    rows = []
    for seq, op in enumerate(plan.ops):
        data_digest = None
        if op.data is not None:
            data_digest = op.after_digest or digest(op.data)
            values[data_digest] = op.data
        rows.append(
            {
                "plan_id": record.id,
                "seq": seq,
                "kind": str(op.kind),
                "path": op.path,
                "expected_version": op.expected_version,
                "data_digest": data_digest,
                "acl": acl_to_json(op.acl),
                "before_digest": op.before_digest,
                "after_digest": op.after_digest,
            }
        )
    store_blobs(session, values)
    bulk_insert(session, PlanOp, rows)
    session.flush()
    return record


def get_plan_record(session: Session, tree: Tree, plan_id: int) -> PlanRecord:
    record = session.get(PlanRecord, plan_id)
    if record is None or record.tree_id != tree.id:
        raise UnknownPlanError(
            f"plan {plan_id} does not exist for tree {tree.name!r};"
            f" make one with 'zkdrift plan {tree.name}'"
        )
    return record


def load_plan(session: Session, tree: Tree, plan_id: int) -> StoredPlan:
    """A persisted plan with its ops (data included), in their order."""
    record = get_plan_record(session, tree, plan_id)
    rows = list(
        session.scalars(select(PlanOp).where(PlanOp.plan_id == plan_id).order_by(PlanOp.seq))
    )
    values = load_blobs(session, (r.data_digest for r in rows if r.data_digest is not None))
    ops = tuple(
        Op(
            OpKind(r.kind),
            r.path,
            data=None if r.data_digest is None else values[r.data_digest],
            expected_version=r.expected_version,
            acl=acl_from_json(r.acl),
            before_digest=r.before_digest,
            after_digest=r.after_digest,
        )
        for r in rows
    )
    return StoredPlan(
        id=record.id,
        tree=tree.name,
        snapshot_id=record.snapshot_id,
        desired_revision_id=record.desired_revision_id,
        prune=record.prune,
        status=record.status,
        plan=Plan(tree=tree.name, ops=ops, warnings=tuple(record.warnings or ())),
    )


def set_status(session: Session, plan_id: int, status: str) -> None:
    record = session.get(PlanRecord, plan_id)
    if record is not None:
        record.status = status
        session.flush()
