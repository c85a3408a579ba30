"""Reconciliation: plan, apply (push desired to live) and adopt (accept live as desired).

The library behind ``zkdrift plan``, ``apply``, ``adopt``, ``lock`` and
``audit``; the flows call the same functions.

- :mod:`.planning`: read live, load desired, persist the plan;
- :mod:`.apply`: resolve the plan, write it under the lock, verify;
- :mod:`.adopt`: accept live (or a snapshot) as desired, under the lock;
- :mod:`.promote`: another tree's values as desired, then plan or apply;
  comparing two trees;
- :mod:`.restore`: a snapshot as desired, then apply (one-command restore);
- :mod:`.audit`: the audited-run context and the audit log;
- :mod:`.outcomes`: how runs end, and the result types;
- :mod:`.locks`: lock status and breaking a stale lock.
"""

from zkdrift.reconcile.adopt import AdoptResult, adopt
from zkdrift.reconcile.apply import DEFAULT_LOCK_WAIT, apply_tree
from zkdrift.reconcile.audit import audit_detail, audit_log
from zkdrift.reconcile.locks import break_tree_lock, tree_lock_status
from zkdrift.reconcile.outcomes import ApplyResult, Direction, Outcome, PlanResult, PlanStatus
from zkdrift.reconcile.planning import moved_paths, plan_tree
from zkdrift.reconcile.promote import PromoteResult, Side, TreeComparison, compare_trees, promote
from zkdrift.reconcile.restore import RestoreResult, SnapshotChoice, choose_snapshot, restore
from zkdrift.zk.writer import DEFAULT_BATCH_OPS

__all__ = [
    "DEFAULT_BATCH_OPS",
    "DEFAULT_LOCK_WAIT",
    "AdoptResult",
    "ApplyResult",
    "Direction",
    "Outcome",
    "PlanResult",
    "PlanStatus",
    "PromoteResult",
    "RestoreResult",
    "Side",
    "SnapshotChoice",
    "TreeComparison",
    "adopt",
    "apply_tree",
    "audit_detail",
    "audit_log",
    "break_tree_lock",
    "choose_snapshot",
    "compare_trees",
    "moved_paths",
    "plan_tree",
    "promote",
    "restore",
    "tree_lock_status",
]
