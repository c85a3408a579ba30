"""Drift runs: every drift check, with one row per differing path.

Rows carry digests and sizes, never values: a drift record must be safe to
show to anyone who may read reports, secrets included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from zkdrift.diff import DriftItem as DriftDifference
from zkdrift.model import DriftClass, Znode, digest, path_digest
from zkdrift.store.bulk import INSERT_CHUNK, chunks
from zkdrift.store.models import DriftItem, DriftRun, Tree, utcnow
from zkdrift.store.trees import lock_tree


def _size(node: Znode | None) -> int | None:
    return None if node is None else len(node.data)


def record_run(
    session: Session,
    tree: Tree,
    items: Sequence[DriftDifference],
    *,
    against: str,
    snapshot_id: int | None,
    desired_revision_id: int | None = None,
    base_snapshot_id: int | None = None,
    started_at: dt.datetime | None = None,
    source: str = "cli",
    digest_of: Callable[[str, bytes], str] = lambda _path, data: digest(data),
) -> DriftRun:
    """Record one drift check and its items in the session's transaction.

    ``digest_of(path, data)`` is the digest recorded for a value: pass the
    redactor's, so secret values get keyed digests that no guess confirms.
    """

    def value_digest(node: Znode | None) -> str | None:
        return None if node is None else digest_of(node.path, node.data)

    lock_tree(session, tree)
    counts = {cls: 0 for cls in DriftClass}
    for item in items:
        counts[item.classification] += 1
    run = DriftRun(
        tree_id=tree.id,
        snapshot_id=snapshot_id,
        against=against,
        desired_revision_id=desired_revision_id,
        base_snapshot_id=base_snapshot_id,
        started_at=started_at or utcnow(),
        total=len(items),
        drift=counts[DriftClass.DRIFT],
        pending=counts[DriftClass.PENDING],
        conflict=counts[DriftClass.CONFLICT],
        source=source,
    )
    session.add(run)
    session.flush()
    rows: list[dict[str, Any]] = [
        {
            "run_id": run.id,
            "tree_id": tree.id,
            "path_digest": path_digest(item.path),
            "path": item.path,
            "kind": str(item.kind),
            "classification": str(item.classification),
            "desired_digest": value_digest(item.desired),
            "live_digest": value_digest(item.live),
            "base_digest": value_digest(item.base),
            "desired_size": _size(item.desired),
            "live_size": _size(item.live),
        }
        for item in items
    ]
    # Core, not the ORM's bulk insert: that one starts a statement whenever the
    # columns left None change from one row to the next, which for mixed items is
    # nearly every row.
    for batch in chunks(rows, INSERT_CHUNK):
        session.execute(insert(cast(Table, DriftItem.__table__)), batch)
    run.finished_at = utcnow()
    session.flush()
    return run


def out_of_sync_since(session: Session, tree: Tree) -> dt.datetime | None:
    """When the checks of live against desired started finding differences without a
    break: the first check after the last one that found none. None when the last
    check found none, or there was none."""
    desired_checks = (DriftRun.tree_id == tree.id, DriftRun.against == "desired")
    last_clean = session.scalar(
        select(func.max(DriftRun.id)).where(*desired_checks, DriftRun.total == 0)
    )
    first_since = session.scalar(
        select(func.min(DriftRun.id)).where(*desired_checks, DriftRun.id > (last_clean or 0))
    )
    if first_since is None:
        return None
    return session.scalar(select(DriftRun.started_at).where(DriftRun.id == first_since))
