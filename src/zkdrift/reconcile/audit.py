"""Every apply and adopt is audited: a row committed before ZooKeeper is touched,
each op recorded as its fate is decided (digests only, never values), and
the row completed with the outcome.

:func:`audited_run` is the one way to run something audited: whatever ends
the ``with`` block (a result, a refusal, an exception, Ctrl-C, SIGTERM), the
row is closed with what happened. A process killed outright leaves the row
``running`` with every batch it sent recorded; :func:`settle_unfinished`,
run by the next apply under the lock, reads live back and decides.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.model import OpKind, OpStatus, TreeState
from zkdrift.reconcile.outcomes import (
    ApplyResult,
    Direction,
    Outcome,
    PlanResult,
    PlanStatus,
    shown_digests,
)
from zkdrift.redact import Redactor
from zkdrift.stopping import Terminated
from zkdrift.store import audit as audit_store
from zkdrift.store import plans as plan_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree
from zkdrift.zk.writer import OpOutcome

log = logging.getLogger(__name__)

_APPLIED = (str(OpStatus.APPLIED), str(OpStatus.ADOPTED))


class AuditedRun:
    """One audited apply or adopt: records its ops as they happen and its outcome once."""

    def __init__(self, app: App, tree: Tree, apply_id: int) -> None:
        self.app = app
        self.tree = tree
        self.apply_id = apply_id
        self.plan_id: int | None = None
        self.revision_id: int | None = None
        self.lock_identifier: str | None = None
        self.ops: dict[int, audit_store.OpRecord] = {}
        self.forgotten_applied = 0  # applied ops recorded without being kept
        self.ops_total = 0
        self.closed = False
        self.redactor = app.redactor()
        # The values the ops replace, for keyed digests of secret paths.
        self.live_values: Mapping[str, bytes] = {}

    @property
    def ops_applied(self) -> int:
        return self.forgotten_applied + sum(1 for r in self.ops.values() if r.outcome in _APPLIED)

    def record(
        self, first: int, records: Sequence[audit_store.OpRecord], *, remember: bool = True
    ) -> None:
        """Record ops ``first``, ``first + 1``, ... now, in a transaction of their own.
        Without ``remember`` they are not kept for :meth:`record_outcomes` (an adopt
        of a million paths audits them a chunk at a time and is done with them)."""
        if remember:
            self.ops.update(enumerate(records, start=first))
        else:
            self.forgotten_applied += sum(1 for r in records if r.outcome in _APPLIED)
        with self.app.db.session() as session:
            audit_store.put_ops(session, self.apply_id, first, records)
            audit_store.progress(
                session,
                self.apply_id,
                plan_id=self.plan_id,
                desired_revision_id=self.revision_id,
                lock_identifier=self.lock_identifier,
                ops_total=self.ops_total,
                ops_applied=self.ops_applied,
            )

    def journal(self, first: int, outcomes: Sequence[OpOutcome]) -> None:
        """The writer's journal: each op's fate as audit records, written at once.
        Digests only, keyed for secret paths."""
        self.record(first, [self._op_record(o) for o in outcomes])

    def record_outcomes(self, outcomes: Sequence[OpOutcome]) -> None:
        """The writer's final word on every op (only the ops whose record changed are written)."""
        changed = [
            (seq, r)
            for seq, r in enumerate(self._op_record(o) for o in outcomes)
            if self.ops.get(seq) != r
        ]
        if changed:
            first = changed[0][0]
            self.record(first, [self._op_record(o) for o in outcomes[first:]])

    def _op_record(self, o: OpOutcome) -> audit_store.OpRecord:
        before, after = shown_digests(o.op, self.live_values, self.redactor)
        return audit_store.OpRecord(
            kind=str(o.op.kind),
            path=o.op.path,
            expected_version=o.op.expected_version,
            before_digest=before,
            after_digest=after,
            outcome=str(o.status),
            error=o.error,
        )

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

    An exception closes the row as failed with its message and propagates;
    Ctrl-C or SIGTERM close it as interrupted. A block that ends without
    closing the run is a bug, recorded as failed too.
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
            stopped = isinstance(exc, (KeyboardInterrupt, Terminated))
            try:
                run.close(
                    Outcome.INTERRUPTED if stopped else Outcome.FAILED,
                    str(exc) or type(exc).__name__,
                )
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


def settle_unfinished(app: App, tree: Tree, apply_id: int, live: TreeState) -> list[str]:
    """Decide what earlier applies of ``tree`` left open, from ``live`` as read now.

    Run by apply ``apply_id`` while it holds the tree's lock, so no earlier
    apply can still commit (every batch is fenced by its own lock node).
    An op of unknown fate (its batch was in flight when the process lost its
    connection or died) is ``applied`` when live shows its effect, and
    ``not-applied`` when live still shows what it was planned against. An
    apply left ``running`` becomes ``interrupted``. Returns one line per
    apply settled.
    """
    redactor = app.redactor()
    notes: list[str] = []
    with app.db.session() as session:
        for row in audit_store.unsettled(session, tree, before=apply_id):
            decided: dict[int, tuple[str, str]] = {}
            for seq, op in audit_store.unknown_ops(session, row.id).items():
                status, why = _read_back(op, live, redactor)
                if status is not None:
                    decided[seq] = (str(status), f"resolved by apply {apply_id}: {why}")
            left = row.outcome == str(Outcome.RUNNING)
            what = ", ".join(
                f"{sum(1 for s, _ in decided.values() if s == str(status))} {status}"
                for status in (OpStatus.APPLIED, OpStatus.NOT_APPLIED)
            )
            note = f"settled by apply {apply_id} from live: {what}" + (
                "; the process stopped without recording an outcome" if left else ""
            )
            audit_store.settle(
                session,
                row.id,
                decided,
                outcome=str(Outcome.INTERRUPTED) if left else None,
                note=note,
            )
            notes.append(f"apply {row.id}: {note}")
            log.info("apply %d of %s: %s", row.id, tree.name, note)
    return notes


def _read_back(
    op: audit_store.OpRecord, live: TreeState, redactor: Redactor
) -> tuple[OpStatus | None, str]:
    """Whether an op whose transaction may or may not have committed did, judged from live."""
    node = live.nodes.get(op.path)
    version = None if node is None or node.stat is None else node.stat.version
    shows_after = node is not None and redactor.digest(op.path, node.data) == op.after_digest
    kind = OpKind(op.kind)
    if kind is OpKind.CREATE:
        if node is None:
            return OpStatus.NOT_APPLIED, "the node does not exist"
        if shows_after:
            return OpStatus.APPLIED, "the node exists with the planned value"
    elif kind is OpKind.DELETE:
        if node is None:
            return OpStatus.APPLIED, "the node is gone"
        if version == op.expected_version:
            return OpStatus.NOT_APPLIED, "the node is still at the planned version"
    elif kind is OpKind.SET:
        if version == op.expected_version:
            return OpStatus.NOT_APPLIED, "the node is still at the planned version"
        if shows_after:
            return OpStatus.APPLIED, "the node holds the planned value at a later version"
    elif kind is OpKind.SET_ACL and node is None:
        return OpStatus.NOT_APPLIED, "the node does not exist"
    return None, "live moved since; the op's fate cannot be told"
