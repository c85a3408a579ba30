"""Report sections as frames for people: every cell display text, in the shared
vocabulary (:mod:`zkdrift.vocabulary`), newest first where people read logs.

The raw frames (:mod:`.history`, :mod:`.drift`) keep machine values (change
kinds as stored, datetimes, timedeltas) for analysis; these are what a
report shows. Values are rendered through a
:class:`~zkdrift.redact.Redactor`: secrets appear as their placeholder only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select

from zkdrift.redact import Redactor
from zkdrift.reports.common import Source, engine_of, tree_row
from zkdrift.reports.drift import apply_audit, time_to_reconcile
from zkdrift.reports.history import change_log, churn_by_path, snapshots_over_time, summary
from zkdrift.reports.window import When, parse_when, utcnow
from zkdrift.store.models import DesiredRevision
from zkdrift.vocabulary import (
    DRIFT_CLASSES,
    age_text,
    drift_kind,
    history_kind,
    origin_text,
    utc_text,
    write_verb,
)

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def bytes_text(size: int | float | None) -> str:
    """``812 bytes``, ``2.5 KiB``, ``1.2 MiB``; empty for no size."""
    if size is None or pd.isna(size):
        return ""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return "1 byte" if int(value) == 1 else f"{int(value):,} bytes"
    return f"{value:,.1f} {_UNITS[unit]}"


def _count(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def _nonzero(value: Any) -> str:
    """A count, empty for none: columns of counts by kind read faster that way."""
    return "" if value is None or pd.isna(value) or int(value) == 0 else f"{int(value):,}"


def _time(value: Any) -> str:
    return "" if value is None or pd.isna(value) else utc_text(pd.Timestamp(value).to_pydatetime())


def _age(value: Any) -> str:
    return "" if value is None or pd.isna(value) else age_text(pd.Timedelta(value).to_pytimedelta())


def _text(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _frame(rows: list[dict[str, str]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype=object)


def summary_facts(
    source: Source, name: str, *, since: When = None, until: When = None
) -> pd.DataFrame:
    """The tree and its history in the window, one labelled fact per row.

    Columns: fact, detail. Facts: tree, root, ZooKeeper, desired state (the
    latest revision with its author, or observed only), snapshots (how many,
    first and latest), live size (nodes and bytes), changes, drift checks,
    open drift, applies and adopts.
    """
    row = summary(source, name, since=since, until=until).iloc[0]
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        hi = parse_when(until)
        revision = conn.execute(
            select(
                DesiredRevision.number,
                DesiredRevision.author,
                DesiredRevision.created_at,
                DesiredRevision.source_commit,
                DesiredRevision.source_author,
                DesiredRevision.source_message,
                DesiredRevision.source_url,
                DesiredRevision.override,
                DesiredRevision.source,
            )
            .where(
                DesiredRevision.tree_id == tree_id,
                *([] if hi is None else [DesiredRevision.created_at < hi]),
            )
            .order_by(DesiredRevision.number.desc())
            .limit(1)
        ).first()
        revisions = conn.scalar(select(func.count()).where(DesiredRevision.tree_id == tree_id))
        overrides = _overrides(conn, tree_id, hi)
    as_of = hi or utcnow()
    snapshots = int(row["snapshots"] or 0)
    if revision is None:
        desired = "none: observed only"
    else:
        count = int(revisions or 0)
        desired = f"revision {revision[0]} by {revision[1]}, {utc_text(revision[2])}" + (
            f" ({count:,} revisions in all)" if count > 1 else ""
        )
        origin = origin_text(
            str(revision[8]),
            str(revision[1]),
            revision[3],
            revision[4],
            revision[5],
            bool(revision[7]),
        )
        if origin != revision[8]:
            desired += f"; {origin}"
    latest = row["last_snapshot_at"]
    facts = [
        ("tree", name),
        ("root", str(row["root"])),
        ("ZooKeeper", str(row["hosts"])),
        ("desired state", desired),
        ("desired source", "" if revision is None or not revision[6] else str(revision[6])),
        ("overrides", overrides),
        ("snapshots", f"{snapshots:,}"),
        ("first snapshot", _time(row["first_snapshot_at"])),
        (
            "latest snapshot",
            ""
            if pd.isna(latest)
            else f"{_time(latest)} ({age_text(as_of - pd.Timestamp(latest).to_pydatetime())} ago)",
        ),
        (
            "live size",
            ""
            if pd.isna(row["nodes"])
            else f"{int(row['nodes']):,} nodes, {bytes_text(row['bytes'])}",
        ),
        ("changes between snapshots", _count(row["changes"])),
        ("drift checks", _count(row["drift_checks"]) if revision is not None else ""),
        ("open drift", f"{int(row['open_drift'] or 0):,} paths" if revision is not None else ""),
        ("applies and adopts", _count(row["applies"])),
    ]
    return pd.DataFrame(
        [(k, v) for k, v in facts if v != ""], columns=["fact", "detail"], dtype=object
    )


def _overrides(conn: Connection, tree_id: int, until: dt.datetime | None) -> str:
    """The hand-made changes (``--override``) made since the last Git sync, listed."""
    synced = conn.scalar(
        select(func.max(DesiredRevision.number)).where(
            DesiredRevision.tree_id == tree_id, DesiredRevision.source_commit.is_not(None)
        )
    )
    rows = conn.execute(
        select(
            DesiredRevision.number,
            DesiredRevision.author,
            DesiredRevision.source,
            DesiredRevision.created_at,
        )
        .where(
            DesiredRevision.tree_id == tree_id,
            DesiredRevision.override.is_(True),
            DesiredRevision.number > (synced or 0),
            *([] if until is None else [DesiredRevision.created_at < until]),
        )
        .order_by(DesiredRevision.number)
    ).all()
    return "; ".join(
        f"revision {n}: override by {who} ({what}, {utc_text(at)})" for n, who, what, at in rows
    )


def _who(actor: Any, direction: Any, apply_id: Any) -> str:
    if apply_id is None or pd.isna(apply_id):
        return ""
    verb = write_verb(direction)
    return f"{actor} ({verb} #{int(apply_id)})"


def reconciled_drift(
    source: Source, name: str, *, since: When = None, until: When = None, limit: int | None = 50
) -> pd.DataFrame:
    """Drift that ended in the window, newest first: how long it lasted and who fixed it.

    Columns: path, kind, classification, detected, reconciled, took, fixed_by
    (the apply or adopt that ran between the last check that saw the drift
    and the first that did not; empty when none did: live or desired was
    changed back by other means).
    """
    df = time_to_reconcile(source, name, since=since, until=until).iloc[::-1]
    if limit is not None:
        df = df.head(limit)
    columns = ["path", "kind", "classification", "detected", "reconciled", "took", "fixed_by"]
    rows = [
        {
            "path": str(r["path"]),
            "kind": drift_kind(str(r["kind"])),
            "classification": DRIFT_CLASSES.get(r["classification"], str(r["classification"])),
            "detected": _time(r["detected_at"]),
            "reconciled": _time(r["resolved_at"]),
            "took": _age(r["time_to_reconcile"]),
            "fixed_by": _who(r["actor"], r["direction"], r["apply_id"]),
        }
        for r in df.to_dict("records")
    ]
    return _frame(rows, columns)


def _ops_text(r: Mapping[Any, Any]) -> str:
    if r["dry_run"]:
        return f"{int(r['ops_total'] or 0):,} planned"
    if r["direction"] == "adopt":
        total = int(r["ops_total"] or 0)
        return f"{total:,} path" + ("" if total == 1 else "s")
    parts = [
        f"{int(r[col]):,} {word}"
        for col, word in (
            ("creates", "create"),
            ("sets", "set"),
            ("deletes", "delete"),
            ("acl_sets", "ACL set"),
        )
        if int(r[col] or 0)
    ]
    if int(r["failed_ops"] or 0):
        parts.append(f"{int(r['failed_ops']):,} failed")
    return ", ".join(parts) or "none"


def apply_history(
    source: Source, name: str, *, since: When = None, until: When = None, limit: int | None = 50
) -> pd.DataFrame:
    """The audit, newest first: every apply and adopt (and dry run) of the tree.

    Columns: started, run (``apply #3``, ``adopt #1``, ``dry run #4``), actor,
    host, reason, revision, outcome, changes (``2 set, 1 delete``), took, and
    error when some run failed.
    """
    df = apply_audit(source, name, since=since, until=until).iloc[::-1]
    if limit is not None:
        df = df.head(limit)
    columns = [
        "started",
        "run",
        "actor",
        "host",
        "reason",
        "revision",
        "outcome",
        "changes",
        "took",
        "error",
    ]
    rows = []
    for r in df.to_dict("records"):
        verb = "dry run" if r["dry_run"] else write_verb(r["direction"])
        rows.append(
            {
                "started": _time(r["started_at"]),
                "run": f"{verb} #{int(r['apply_id'])}",
                "actor": _text(r["actor"]),
                "host": _text(r["host"]),
                "reason": _text(r["reason"]),
                "revision": _count(r["revision"]),
                "outcome": _text(r["outcome"]),
                "changes": _ops_text(r),
                "took": _age(r["duration"]),
                "error": _text(r["error"]),
            }
        )
    frame = _frame(rows, columns)
    if not frame.empty and not frame["error"].any():
        frame = frame.drop(columns=["error"])  # no run failed: no empty column
    return frame


def snapshot_table(
    source: Source, name: str, *, since: When = None, until: When = None, limit: int | None = 12
) -> pd.DataFrame:
    """The newest snapshots first: size and what changed since the one before.

    Columns: snapshot, taken, nodes, size, created, deleted, changed (empty
    for none), source, and note (``baseline`` for the tree's first snapshot,
    whose nodes are not changes) when the baseline is among them.
    """
    df = snapshots_over_time(source, name, since=since, until=until).iloc[::-1]
    if limit is not None:
        df = df.head(limit)
    columns = [
        "snapshot",
        "taken",
        "nodes",
        "size",
        "created",
        "deleted",
        "changed",
        "source",
        "note",
    ]
    rows = []
    for r in df.to_dict("records"):
        base = bool(r["baseline"])
        rows.append(
            {
                "snapshot": _count(r["snapshot_id"]),
                "taken": _time(r["taken_at"]),
                "nodes": _count(r["nodes"]),
                "size": bytes_text(r["bytes"]),
                "created": "" if base else _nonzero(r["added"]),
                "deleted": "" if base else _nonzero(r["removed"]),
                "changed": "" if base else _nonzero(r["modified"]),
                "source": _text(r["source"]),
                "note": "baseline" if base else "",
            }
        )
    frame = _frame(rows, columns)
    if not frame.empty and not frame["note"].any():
        frame = frame.drop(columns=["note"])
    return frame


def churn_table(
    source: Source, name: str, *, since: When = None, until: When = None, limit: int | None = 20
) -> pd.DataFrame:
    """The most changed paths, most changes first, changes counted by kind.

    Columns: path, changes, created, deleted, changed, ACL changed,
    first_changed, last_changed (the snapshots that first saw the first and
    the last change). Kinds a path never had are left empty.
    """
    df = churn_by_path(source, name, since=since, until=until, limit=limit)
    kinds = [
        ("added", history_kind("added")),
        ("removed", history_kind("removed")),
        ("data_changed", history_kind("data_changed")),
        ("acl_changed", history_kind("acl_changed")),
    ]
    columns = ["path", "changes", *(label for _col, label in kinds)]
    columns += ["first_changed", "last_changed"]
    rows = []
    for r in df.to_dict("records"):
        row = {"path": str(r["path"]), "changes": _count(r["changes"])}
        row.update({label: _nonzero(r[col]) for col, label in kinds})
        row["first_changed"] = _time(r["first_changed"])
        row["last_changed"] = _time(r["last_changed"])
        rows.append(row)
    return _frame(rows, columns)


def recent_changes(
    source: Source,
    name: str,
    redactor: Redactor | None = None,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = 50,
) -> pd.DataFrame:
    """The newest changes between snapshots first, values shown with secrets redacted.

    Columns: seen (when the snapshot that first saw the change was taken),
    snapshot, path, kind (``created``, ``deleted``, ``changed``, ``ACL
    changed``), before, after.
    """
    df = change_log(
        source, name, since=since, until=until, limit=limit, values=True, redactor=redactor
    ).iloc[::-1]
    columns = ["seen", "snapshot", "path", "kind", "before", "after"]
    rows = [
        {
            "seen": _time(r["taken_at"]),
            "snapshot": _count(r["snapshot_id"]),
            "path": str(r["path"]),
            "kind": history_kind(str(r["kind"])),
            "before": _text(r["before"]),
            "after": _text(r["after"]),
        }
        for r in df.to_dict("records")
    ]
    return _frame(rows, columns)


def generated_text(now: dt.datetime | None = None) -> str:
    """``generated 2026-12-01 14:12:05 UTC``."""
    return f"generated {utc_text(now or utcnow())}"
