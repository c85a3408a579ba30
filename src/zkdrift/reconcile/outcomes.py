"""The vocabulary of reconciliation: how a run ended, and what a plan, apply or adopt returns.

Results are plain frozen data. Values they carry are for display only and
go through a :class:`~zkdrift.redact.Redactor` in :meth:`as_json`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zkdrift.model import Op, OpKind
from zkdrift.redact import Redactor


class Outcome(enum.StrEnum):
    """How an audited apply or adopt ended (``applies.outcome``)."""

    RUNNING = "running"  # recorded before ZooKeeper is touched; stays if the process died
    APPLIED = "applied"
    ADOPTED = "adopted"
    NO_OP = "no-op"
    DRY_RUN = "dry-run"
    REFUSED = "refused"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by SIGTERM or Ctrl-C, or found dead by a later apply

    @property
    def ok(self) -> bool:
        return self in (Outcome.APPLIED, Outcome.ADOPTED, Outcome.NO_OP, Outcome.DRY_RUN)


class PlanStatus(enum.StrEnum):
    """Where a persisted plan stands (``plans.status``)."""

    PLANNED = "planned"
    APPLIED = "applied"
    REFUSED = "refused"
    FAILED = "failed"


class Direction(enum.StrEnum):
    """Which way an audited run moves configuration (``applies.direction``)."""

    PUSH = "push"  # desired -> live
    ADOPT = "adopt"  # live -> desired
    PROMOTE = "promote"  # another tree's values -> desired -> live
    RESTORE = "restore"  # a recorded snapshot -> desired -> live


def shown_digests(
    op: Op, live_values: Mapping[str, bytes], redactor: Redactor
) -> tuple[str | None, str | None]:
    """An op's before/after digests as people may see them: keyed for secret paths
    (from the values themselves), the plan's own SHA-256 otherwise."""
    if not redactor.is_secret(op.path):
        return op.before_digest, op.after_digest
    before = live_values.get(op.path)
    return (
        None if before is None else redactor.digest(op.path, before),
        None if op.data is None else redactor.digest(op.path, op.data),
    )


def _counts(ops: tuple[Op, ...]) -> dict[str, int]:
    out = {str(k): 0 for k in OpKind}
    for op in ops:
        out[str(op.kind)] += 1
    return out


@dataclass(frozen=True)
class PlanResult:
    """A persisted plan, ready to show or apply."""

    plan_id: int | None
    tree: str
    ops: tuple[Op, ...]
    warnings: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    snapshot_id: int | None = None
    desired_revision: int | None = None  # the revision number planned against
    prune: bool = False
    # Live values of the paths the plan sets or deletes, keyed by path (display only).
    live_values: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def op_count(self) -> int:
        return len(self.ops)

    @property
    def empty(self) -> bool:
        return not self.ops

    @property
    def counts(self) -> dict[str, int]:
        return _counts(self.ops)

    def op_json(self, op: Op, redactor: Redactor) -> dict[str, Any]:
        before = self.live_values.get(op.path)
        before_digest, after_digest = shown_digests(op, self.live_values, redactor)
        kind = "hmac" if redactor.is_secret(op.path) else "sha256"
        return {
            "kind": str(op.kind),
            "path": op.path,
            "expected_version": op.expected_version,
            "before": None if before is None else redactor.render(op.path, before),
            "after": None if op.data is None else redactor.render(op.path, op.data),
            f"before_{kind}": before_digest,
            f"after_{kind}": after_digest,
            "acl": None if op.acl is None else [a.render() for a in op.acl],
        }

    def as_json(self, redactor: Redactor) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "tree": self.tree,
            "snapshot_id": self.snapshot_id,
            "desired_revision": self.desired_revision,
            "prune": self.prune,
            "ops_count": self.op_count,
            "counts": self.counts,
            "warnings": list(self.warnings),
            "refusals": list(self.refusals),
            "ops": [self.op_json(op, redactor) for op in self.ops],
        }


@dataclass(frozen=True)
class ApplyResult:
    apply_id: int
    tree: str
    outcome: Outcome
    ops_applied: int
    ops_total: int
    message: str
    moved_paths: tuple[str, ...] = ()
    plan: PlanResult | None = None
    refusals: tuple[str, ...] = ()
    lock_holder: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def as_json(self, redactor: Redactor) -> dict[str, Any]:
        return {
            "apply_id": self.apply_id,
            "tree": self.tree,
            "outcome": str(self.outcome),
            "ops_applied": self.ops_applied,
            "ops_total": self.ops_total,
            "message": self.message,
            "moved_paths": list(self.moved_paths),
            "refusals": list(self.refusals),
            "lock_holder": self.lock_holder,
            "plan": None if self.plan is None else self.plan.as_json(redactor),
        }
