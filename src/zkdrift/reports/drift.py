"""Drift frames: what differs from desired, since when, who fixed it, and the apply audit.

A drift *episode* is one path differing from desired in an unbroken run of
consecutive drift checks (against desired state); it is *open* while the
latest check still reports the path, and *reconciled* by the first check
that no longer does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import case, func, literal, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from zkdrift.model import DriftClass
from zkdrift.reports.common import Source, engine_of, read_frame, tree_row, window_conditions
from zkdrift.reports.window import When, parse_when, utcnow
from zkdrift.store.models import Apply, ApplyOp, DesiredRevision, DriftItem, DriftRun, Tree


def drift_over_time(
    source: Source,
    name: str | None,
    *,
    since: When = None,
    until: When = None,
    against: str = "desired",
) -> pd.DataFrame:
    """Drift check results in long form: one row per (check, classification).

    Columns: tree, run_id, checked_at, snapshot_id, classification, count.
    ``name`` None covers every tree. ``against`` selects checks against
    desired state (the default) or against a snapshot.
    """
    with engine_of(source).connect() as conn:
        conds: list[ColumnElement[bool]] = [
            DriftRun.against == against,
            *window_conditions(DriftRun.started_at, since, until),
        ]
        if name is not None:
            tree_id, _root = tree_row(conn, name)
            conds.append(DriftRun.tree_id == tree_id)
        parts = [
            select(
                Tree.name.label("tree"),
                DriftRun.id.label("run_id"),
                DriftRun.started_at.label("checked_at"),
                DriftRun.snapshot_id,
                literal(cls.value).label("classification"),
                getattr(DriftRun, cls.value).label("count"),
            )
            .join(Tree, Tree.id == DriftRun.tree_id)
            .where(*conds)
            for cls in DriftClass
        ]
        u = union_all(*parts).subquery()
        query = select(*u.c).order_by(u.c.run_id, u.c.classification)
        return read_frame(
            conn, query, dates=["checked_at"], ints=["run_id", "snapshot_id", "count"]
        )


def _episodes(tree_id: int, until: When, against: str = "desired") -> Any:
    """Drift episodes of a tree as a subquery (gaps and islands over check numbers).

    Columns: path_digest, path, first_seq, last_seq, checks, detected_at,
    last_seen_at, classification, kind, resolved_at, latest_seq.
    """
    runs = (
        select(
            DriftRun.id,
            DriftRun.started_at,
            func.row_number().over(order_by=DriftRun.id).label("seq"),
        )
        .where(
            DriftRun.tree_id == tree_id,
            DriftRun.against == against,
            *window_conditions(DriftRun.started_at, None, until),
        )
        .cte("runs")
    )
    items = (
        select(
            DriftItem.path_digest,
            DriftItem.path,
            DriftItem.classification,
            DriftItem.kind,
            runs.c.seq,
            runs.c.started_at,
            # Consecutive checks of one path share seq - row_number: its island.
            (
                runs.c.seq
                - func.row_number().over(partition_by=DriftItem.path_digest, order_by=runs.c.seq)
            ).label("island"),
            func.lead(runs.c.seq)
            .over(partition_by=DriftItem.path_digest, order_by=runs.c.seq)
            .label("next_seq"),
        )
        .join(runs, runs.c.id == DriftItem.run_id)
        .subquery("items")
    )
    island = (items.c.path_digest, items.c.island)
    marked = select(
        items,
        func.min(items.c.seq).over(partition_by=island).label("first_seq"),
        func.count().over(partition_by=island).label("checks"),
        func.min(items.c.started_at).over(partition_by=island).label("detected_at"),
    ).subquery("marked")
    next_run = aliased(runs, name="next_run")
    # One row per island: its last item (the path is absent from the next check).
    return (
        select(
            marked.c.path_digest,
            marked.c.path,
            marked.c.first_seq,
            marked.c.seq.label("last_seq"),
            marked.c.checks,
            marked.c.detected_at,
            marked.c.started_at.label("last_seen_at"),
            marked.c.classification,
            marked.c.kind,
            next_run.c.started_at.label("resolved_at"),
            select(func.max(runs.c.seq)).scalar_subquery().label("latest_seq"),
        )
        .outerjoin(next_run, next_run.c.seq == marked.c.seq + 1)
        .where(or_(marked.c.next_seq.is_(None), marked.c.next_seq != marked.c.seq + 1))
        .subquery("episodes")
    )


@contextmanager
def _episodes_of(source: Source, name: str, until: When) -> Iterator[tuple[Connection, int, Any]]:
    """A connection, the tree's id and its drift episodes up to ``until``."""
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        yield conn, tree_id, _episodes(tree_id, until)


def _episode_columns(name: str, ep: Any) -> list[Any]:
    """What every episode frame shows first: tree, path, class, kind and when it was seen."""
    return [
        literal(name).label("tree"),
        ep.c.path,
        ep.c.classification,
        ep.c.kind,
        ep.c.detected_at,
        ep.c.last_seen_at,
    ]


def open_drift(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
) -> pd.DataFrame:
    """What the latest drift check (before ``until``) still reports, with its age.

    Columns: tree, path, classification, kind, detected_at, last_seen_at,
    checks (consecutive checks that reported it), age (``until``, or now,
    minus detected_at), age_hours. ``since`` keeps drift first detected at or
    after it. Oldest first.
    """
    as_of = parse_when(until) or utcnow()
    with _episodes_of(source, name, until) as (conn, _tree_id, ep):
        query = (
            select(*_episode_columns(name, ep), ep.c.checks)
            .where(
                ep.c.last_seq == ep.c.latest_seq, *window_conditions(ep.c.detected_at, since, None)
            )
            .order_by(ep.c.detected_at, ep.c.path)
        )
        df = read_frame(conn, query, dates=["detected_at", "last_seen_at"], ints=["checks"])
    df["age"] = pd.Timestamp(as_of) - df["detected_at"]
    df["age_hours"] = df["age"].dt.total_seconds() / 3600
    return df


def time_to_reconcile(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
) -> pd.DataFrame:
    """Drift episodes that ended in the window: from first detected to first clean check.

    Columns: tree, path, classification, kind, detected_at, last_seen_at,
    resolved_at, time_to_reconcile, hours, apply_id, actor (the latest apply
    started between the last check that saw the drift and the check that no
    longer did: who fixed it, when zkdrift did), direction.
    """
    with _episodes_of(source, name, until) as (conn, tree_id, ep):
        fixer = (
            select(func.max(Apply.id))
            .where(
                Apply.tree_id == tree_id,
                Apply.dry_run.is_(False),
                Apply.started_at >= ep.c.last_seen_at,
                Apply.started_at <= ep.c.resolved_at,
            )
            .correlate(ep)
            .scalar_subquery()
        )
        resolved = (
            select(*_episode_columns(name, ep), ep.c.resolved_at, fixer.label("apply_id"))
            .where(
                ep.c.resolved_at.is_not(None), *window_conditions(ep.c.resolved_at, since, until)
            )
            .subquery()
        )
        query = (
            select(resolved, Apply.actor, Apply.direction)
            .outerjoin(Apply, Apply.id == resolved.c.apply_id)
            .order_by(resolved.c.resolved_at, resolved.c.path)
        )
        df = read_frame(
            conn,
            query,
            dates=["detected_at", "last_seen_at", "resolved_at"],
            ints=["apply_id"],
        )
    df["time_to_reconcile"] = df["resolved_at"] - df["detected_at"]
    df["hours"] = df["time_to_reconcile"].dt.total_seconds() / 3600
    cols = [c for c in df.columns if c not in ("actor", "direction")] + ["actor", "direction"]
    return df[cols]


def apply_audit(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
) -> pd.DataFrame:
    """Every apply (and adopt) of the tree, oldest first: who, why, what, how it ended.

    Columns: tree, apply_id, started_at, finished_at, duration, actor, host,
    direction, reason, revision, dry_run, outcome, ops_total, ops_applied,
    creates, sets, deletes, acl_sets, failed_ops, error.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)

        def op_count(kind: str) -> Any:
            return func.sum(case((ApplyOp.kind == kind, 1), else_=0))

        ops = (
            select(
                ApplyOp.apply_id,
                op_count("create").label("creates"),
                op_count("set").label("sets"),
                op_count("delete").label("deletes"),
                op_count("set_acl").label("acl_sets"),
                func.sum(case((ApplyOp.error.is_not(None), 1), else_=0)).label("failed_ops"),
            )
            .group_by(ApplyOp.apply_id)
            .subquery()
        )
        query = (
            select(
                literal(name).label("tree"),
                Apply.id.label("apply_id"),
                Apply.started_at,
                Apply.finished_at,
                Apply.actor,
                Apply.host,
                Apply.direction,
                Apply.reason,
                DesiredRevision.number.label("revision"),
                Apply.dry_run,
                Apply.outcome,
                Apply.ops_total,
                Apply.ops_applied,
                func.coalesce(ops.c.creates, 0).label("creates"),
                func.coalesce(ops.c.sets, 0).label("sets"),
                func.coalesce(ops.c.deletes, 0).label("deletes"),
                func.coalesce(ops.c.acl_sets, 0).label("acl_sets"),
                func.coalesce(ops.c.failed_ops, 0).label("failed_ops"),
                Apply.error,
            )
            .outerjoin(DesiredRevision, DesiredRevision.id == Apply.desired_revision_id)
            .outerjoin(ops, ops.c.apply_id == Apply.id)
            .where(Apply.tree_id == tree_id, *window_conditions(Apply.started_at, since, until))
            .order_by(Apply.id)
        )
        df = read_frame(
            conn,
            query,
            dates=["started_at", "finished_at"],
            ints=[
                "apply_id",
                "revision",
                "ops_total",
                "ops_applied",
                "creates",
                "sets",
                "deletes",
                "acl_sets",
                "failed_ops",
            ],
            bools=["dry_run"],
        )
    df.insert(4, "duration", df["finished_at"] - df["started_at"])
    return df
