"""Every apply and adopt is audited: a row committed before ZooKeeper is touched,
completed with the outcome and each op (digests only, never values).

:func:`audited_run` is the one way to run something audited: whatever ends
the ``with`` block (a result, a refusal, an exception, Ctrl-C), the row is
closed with what happened.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.model import OpStatus
from zkdrift.reconcile.outcomes import (
    ApplyResult,
    Direction,
    Outcome,
    PlanResult,
    PlanStatus,
    shown_digests,
)
from zkdrift.store import audit as audit_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree
from zkdrift.zk.writer import OpOutcome

log = logging.getLogger(__name__)


class AuditedRun:
    """One audited apply or adopt: collects what to record and writes it once."""

    def __init__(self, app: App, tree: Tree, apply_id: int) -> None:
        self.app = app
        self.tree = tree
        self.apply_id = apply_id
        self.plan_id: int | None = None
        self.revision_id: int | None = None
        self.lock_identifier: str | None = None
        self.ops: list[audit_store.OpRecord] = []
        self.ops_total = 0
        self.ops_applied = 0
        self.closed = False
        self.redactor = app.redactor()

    def record_outcomes(
        self, outcomes: Sequence[OpOutcome], live_values: Mapping[str, bytes]
    ) -> None:
        """What the writer reports for each op, as audit records: digests only,
        keyed for secret paths (``live_values`` are the values the ops replace)."""
        self.ops = []
        for o in outcomes:
            before, after = shown_digests(o.op, live_values, self.redactor)
            self.ops.append(
                audit_store.OpRecord(
                    kind=str(o.op.kind),
                    path=o.op.path,
                    expected_version=o.op.expected_version,
                    before_digest=before,
                    after_digest=after,
                    outcome=str(o.status),
                    error=o.error,
                )
            )
        self.ops_applied = sum(1 for o in outcomes if o.status is OpStatus.APPLIED)

    def close(
        self,
        outcome: Outcome,
        message: str,
        *,
        plan: PlanResult | None = None,
        moved: Sequence[str] = (),
        refusals: Sequence[str] = (),
        holder: str | None = None,
        plan_status: PlanStatus | None = None,
    ) -> ApplyResult:
        with self.app.db.session() as session:
            audit_store.finish(
                session,
                self.apply_id,
                outcome=str(outcome),
                error=None if outcome.ok else message,
                plan_id=self.plan_id,
                desired_revision_id=self.revision_id,
                lock_identifier=self.lock_identifier,
                ops_total=self.ops_total,
                ops_applied=self.ops_applied,
                ops=self.ops,
            )
            if plan_status is not None and self.plan_id is not None:
                plan_store.set_status(session, self.plan_id, str(plan_status))
        self.closed = True
        log.info("apply %d of %s: %s (%s)", self.apply_id, self.tree.name, outcome, message)
        return ApplyResult(
            apply_id=self.apply_id,
            tree=self.tree.name,
            outcome=outcome,
            ops_applied=self.ops_applied,
            ops_total=self.ops_total,
            message=message,
            moved_paths=tuple(moved),
            plan=plan,
            refusals=tuple(refusals),
            lock_holder=holder,
        )


@contextmanager
def audited_run(
    app: App,
    tree: Tree,
    *,
    direction: Direction,
    actor: str,
    reason: str,
    dry_run: bool = False,
) -> Iterator[AuditedRun]:
    """Record a ``running`` audit row, yield the run, and make sure it is closed.

    An exception (or Ctrl-C) closes the row as failed with its message and
    propagates; a block that ends without closing the run is a bug, recorded
    as failed too.
    """
    with app.db.session() as session:
        apply_id = audit_store.start(
            session,
            tree,
            direction=str(direction),
            actor=actor,
            reason=reason,
            host=socket.gethostname(),
            dry_run=dry_run,
        ).id
    run = AuditedRun(app, tree, apply_id)
    try:
        yield run
    except BaseException as exc:
        if not run.closed:
            try:
                run.close(Outcome.FAILED, str(exc) or type(exc).__name__)
            except Exception:  # the database itself may be what failed
                log.exception("could not record the outcome of apply %d", apply_id)
        raise
    if not run.closed:
        run.close(Outcome.FAILED, "the run ended without recording an outcome")


def audit_log(
    app: App, name: str, *, limit: int | None = 50, include_dry_runs: bool = True
) -> list[audit_store.AuditEntry]:
    """The tree's applies and adopts, newest first."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        return audit_store.list_entries(
            session, tree, limit=limit, include_dry_runs=include_dry_runs
        )


def audit_detail(
    app: App, name: str, apply_id: int
) -> tuple[audit_store.AuditEntry, list[audit_store.OpRecord]]:
    """One apply or adopt with each of its ops."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        entry = audit_store.get_entry(session, tree, apply_id)
        if entry is None:
            raise InvalidInputError(f"apply {apply_id} is not recorded for tree {name!r}")
        return entry, list(audit_store.entry_ops(session, apply_id))
