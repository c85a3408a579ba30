"""Reports: tidy pandas DataFrames straight from the store, secrets redacted.

Every function takes a SQLAlchemy :class:`~sqlalchemy.Engine` or a zkdrift
:class:`~zkdrift.app.App`, a tree name and an optional ``since``/``until``
window (naive UTC datetimes, ``since`` inclusive, ``until`` exclusive), and
returns one DataFrame built by one SQL statement: joins and aggregation run
in the database, pandas only receives the result.

The frames never hold digests of values. Values appear only in
:func:`change_log` with ``values=True``, rendered through
:class:`~zkdrift.redact.Redactor` (secrets become placeholders).

Vocabulary:

- a *change* is a difference between a snapshot and the one before it
  (``added``, ``removed``, ``data_changed``, ``acl_changed``); a tree's first
  snapshot is its *baseline* and has no changes;
- a drift *episode* is one path differing from desired in an unbroken run of
  consecutive drift checks (against desired state); it is *open* while the
  latest check still reports the path, and *reconciled* by the first check
  that no longer does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr
from sqlalchemy import (
    Engine,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Selectable

from zkdrift.app import App
from zkdrift.errors import InvalidInputError, UnknownTreeError
from zkdrift.model import ChangeKind, DriftClass
from zkdrift.redact import Redactor
from zkdrift.settings import Settings
from zkdrift.store.engine import safe_url
from zkdrift.store.models import (
    Apply,
    ApplyOp,
    Blob,
    DesiredRevision,
    DriftItem,
    DriftRun,
    NodeState,
    Snapshot,
    Tree,
    utcnow,
)

Source = Engine | App
When = dt.datetime | dt.date | str | None

# Rendered values longer than this are cut (with an ellipsis) in change logs.
MAX_VALUE_CHARS = 160

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --------------------------------------------------------------------------- plumbing


def parse_when(value: When, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A window bound as a naive UTC datetime.

    Accepts a datetime (aware ones are converted to UTC), a date (its
    midnight), an ISO 8601 string, or a relative age such as ``30m``,
    ``12h``, ``7d`` or ``2w`` (that long before ``now``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    match = _RELATIVE.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return (now or utcnow()) - dt.timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"cannot read {value!r} as a time: use ISO 8601 (2024-06-01, "
            "2024-06-01T12:00) or an age such as 30m, 12h, 7d, 2w"
        ) from None
    return parse_when(parsed)


def engine_of(source: Source) -> Engine:
    return source.db.engine if isinstance(source, App) else source


def redactor_of(source: Source, redactor: Redactor | None = None) -> Redactor:
    if redactor is not None:
        return redactor
    if isinstance(source, App):
        return Redactor(source.settings.secret_globs)
    return Redactor()


def _tree(conn: Connection, name: str) -> tuple[int, str]:
    row = conn.execute(select(Tree.id, Tree.root).where(Tree.name == name)).first()
    if row is None:
        known = list(conn.scalars(select(Tree.name).order_by(Tree.name)))
        raise UnknownTreeError(name, known)
    return int(row[0]), str(row[1])


def _window(
    column: Any, since: When, until: When, now: dt.datetime | None = None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    lo, hi = parse_when(since, now=now), parse_when(until, now=now)
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column < hi)
    return conds


def _read(
    conn: Connection,
    query: Selectable,
    *,
    dates: Sequence[str] = (),
    ints: Sequence[str] = (),
    bools: Sequence[str] = (),
) -> pd.DataFrame:
    """Run ``query``; give date, integer and boolean columns stable dtypes, even when empty."""
    df = pd.read_sql(query, conn)
    for col in dates:
        df[col] = pd.to_datetime(df[col])
    for col in ints:
        df[col] = df[col].astype("Int64")
    for col in bools:
        df[col] = df[col].astype(bool)
    return df


def default_tree(source: Source) -> str | None:
    """The first registered tree (the oldest), or None when there is none."""
    with engine_of(source).connect() as conn:
        return conn.scalar(select(Tree.name).order_by(Tree.id).limit(1))


def notebook_app(database_url: str | None = None, secret_globs: Sequence[str] | None = None) -> App:
    """The App a notebook runs against: settings from the environment (``ZKDRIFT_*``,
    ``.env``), with ``database_url`` and ``secret_globs`` overriding them when given."""
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = SecretStr(database_url)
    if secret_globs:
        overrides["secret_globs"] = list(secret_globs)
    return App(Settings(**overrides))


def require_tree(source: Source, name: str | None) -> str:
    """``name`` when it is a registered tree, else the first registered one.

    Raises :class:`~zkdrift.errors.UnknownTreeError` for an unknown name and
    :class:`~zkdrift.errors.InvalidInputError` when no tree is registered.
    """
    with engine_of(source).connect() as conn:
        if name:
            _tree(conn, name)
            return name
    default = default_tree(source)
    if default is None:
        raise InvalidInputError(
            "no tree is registered in this database yet: register one with 'zkdrift tree add'"
        )
    return default


def describe_window(since: When = None, until: When = None) -> str:
    """The window in words, for report headers."""
    lo, hi = parse_when(since), parse_when(until)

    def fmt(value: dt.datetime) -> str:
        return value.isoformat(sep=" ", timespec="minutes") + " UTC"

    if lo and hi:
        return f"{fmt(lo)} to {fmt(hi)}"
    if lo:
        return f"since {fmt(lo)}"
    if hi:
        return f"until {fmt(hi)}"
    return "all history"


def render_report(
    app: App,
    name: str,
    *,
    since: When = None,
    until: When = None,
    output: Path,
) -> Path:
    """Execute the drift and history notebooks for ``name`` and write one HTML report
    to ``output`` (code hidden); see :func:`zkdrift.report_render.render_report`."""
    from zkdrift.report_render import render_report as render

    return render(app, name, since=since, until=until, output=output)


def database_label(source: Source) -> str:
    """The database URL with its password masked: the only form fit to display."""
    return safe_url(engine_of(source).url)


# --------------------------------------------------------------------------- snapshots


def _baseline_id(tree_id: int) -> Any:
    # Never correlated: the baseline is the tree's first snapshot, whatever the outer row.
    first = aliased(Snapshot)
    return select(func.min(first.id)).where(first.tree_id == tree_id).scalar_subquery()


def snapshots_over_time(
    source: Source, name: str, *, since: When = None, until: When = None
) -> pd.DataFrame:
    """One row per snapshot: size (nodes, bytes) and changes since the previous snapshot.

    Columns: tree, snapshot_id, taken_at, nodes, bytes, added, removed,
    modified, changes, ephemeral, baseline, source, read_seconds, write_seconds.
    The baseline (the tree's first snapshot) counts every node as added.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        query = (
            select(
                literal(name).label("tree"),
                Snapshot.id.label("snapshot_id"),
                Snapshot.started_at.label("taken_at"),
                Snapshot.node_count.label("nodes"),
                Snapshot.total_bytes.label("bytes"),
                Snapshot.added,
                Snapshot.removed,
                Snapshot.modified,
                (Snapshot.added + Snapshot.removed + Snapshot.modified).label("changes"),
                Snapshot.ephemeral_count.label("ephemeral"),
                (Snapshot.id == _baseline_id(tree_id)).label("baseline"),
                Snapshot.source,
                Snapshot.read_seconds,
                Snapshot.write_seconds,
            )
            .where(Snapshot.tree_id == tree_id, *_window(Snapshot.started_at, since, until))
            .order_by(Snapshot.id)
        )
        return _read(
            conn,
            query,
            dates=["taken_at"],
            ints=["snapshot_id", "nodes", "bytes", "added", "removed", "modified", "changes"],
            bools=["baseline"],
        )


# --------------------------------------------------------------------------- change log


def _changes(tree_id: int) -> Any:
    """Every change of a tree, as a subquery: snapshot_id, path_digest, path, kind,
    before_size, after_size, before_digest, after_digest.

    A node-state row opened by a snapshot is an addition when no row of the same
    path was closed by it, else a modification when data or ACL differ (rows that
    differ only in stat, such as a parent's cversion, are not changes). A row
    closed by a snapshot that opened none for its path is a removal.
    """
    new, old = aliased(NodeState), aliased(NodeState)
    baseline = _baseline_id(tree_id)
    acl_differs = cast(old.acl, Text) != cast(new.acl, Text)
    opened = (
        select(
            new.valid_from.label("snapshot_id"),
            new.path_digest,
            new.path,
            case(
                (old.id.is_(None), literal(ChangeKind.ADDED.value)),
                (old.data_digest != new.data_digest, literal(ChangeKind.DATA_CHANGED.value)),
                else_=literal(ChangeKind.ACL_CHANGED.value),
            ).label("kind"),
            old.data_length.label("before_size"),
            new.data_length.label("after_size"),
            old.data_digest.label("before_digest"),
            new.data_digest.label("after_digest"),
        )
        .select_from(new)
        .outerjoin(
            old,
            and_(
                old.tree_id == new.tree_id,
                old.path_digest == new.path_digest,
                old.valid_to == new.valid_from,
            ),
        )
        .where(
            new.tree_id == tree_id,
            new.valid_from != baseline,
            or_(old.id.is_(None), old.data_digest != new.data_digest, acl_differs),
        )
    )
    reopened = (
        select(new.id)
        .where(
            new.tree_id == old.tree_id,
            new.path_digest == old.path_digest,
            new.valid_from == old.valid_to,
        )
        .correlate(old)
    )
    closed = select(
        old.valid_to.label("snapshot_id"),
        old.path_digest,
        old.path,
        literal(ChangeKind.REMOVED.value).label("kind"),
        old.data_length.label("before_size"),
        null().label("after_size"),
        old.data_digest.label("before_digest"),
        null().label("after_digest"),
    ).where(old.tree_id == tree_id, old.valid_to.is_not(None), ~exists(reopened))
    return union_all(opened, closed).subquery("changes")


def change_log(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = None,
    values: bool = False,
    redactor: Redactor | None = None,
) -> pd.DataFrame:
    """Every change between consecutive snapshots, oldest first.

    Columns: tree, snapshot_id, taken_at, path, kind, before_size, after_size,
    and with ``values`` also ``before`` and ``after``: the values rendered for
    display, secrets as placeholders, long values cut at
    :data:`MAX_VALUE_CHARS`. ``limit`` keeps the newest ``limit`` changes.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        ch = _changes(tree_id)
        query = (
            select(
                literal(name).label("tree"),
                ch.c.snapshot_id,
                Snapshot.started_at.label("taken_at"),
                ch.c.path,
                ch.c.kind,
                ch.c.before_size,
                ch.c.after_size,
                ch.c.before_digest,
                ch.c.after_digest,
            )
            .join(Snapshot, Snapshot.id == ch.c.snapshot_id)
            .where(*_window(Snapshot.started_at, since, until))
        )
        if limit is not None:
            query = query.order_by(ch.c.snapshot_id.desc(), ch.c.path.desc()).limit(limit)
        picked = query.subquery("picked")
        shown = [c for c in picked.c if not c.name.endswith("_digest")]
        query = select(*shown)
        if values:
            # Values are fetched for the picked changes only, after the limit.
            before, after = aliased(Blob), aliased(Blob)
            query = (
                query.add_columns(before.data.label("before"), after.data.label("after"))
                .outerjoin(before, before.digest == picked.c.before_digest)
                .outerjoin(after, after.digest == picked.c.after_digest)
            )
        df = _read(
            conn,
            query,
            dates=["taken_at"],
            ints=["snapshot_id", "before_size", "after_size"],
        )
    df = df.sort_values(["snapshot_id", "path"], kind="stable", ignore_index=True)
    if values:
        rd = redactor_of(source, redactor)
        for col in ("before", "after"):
            df[col] = [
                None if data is None else _cut(rd.render(path, bytes(data)))
                for path, data in zip(df["path"], df[col], strict=True)
            ]
    return df


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _path_counts(conn: Connection, tree_id: int, since: When, until: When) -> pd.DataFrame:
    ch = _changes(tree_id)

    def kind_count(kind: ChangeKind) -> Any:
        return func.sum(case((ch.c.kind == kind.value, 1), else_=0)).label(kind.value)

    query = (
        select(
            func.max(ch.c.path).label("path"),
            func.count().label("changes"),
            kind_count(ChangeKind.ADDED),
            kind_count(ChangeKind.REMOVED),
            kind_count(ChangeKind.DATA_CHANGED),
            kind_count(ChangeKind.ACL_CHANGED),
            func.min(Snapshot.started_at).label("first_changed"),
            func.max(Snapshot.started_at).label("last_changed"),
        )
        .join(Snapshot, Snapshot.id == ch.c.snapshot_id)
        .where(*_window(Snapshot.started_at, since, until))
        # Group by the digest: MariaDB groups long TEXT values by a prefix only.
        .group_by(ch.c.path_digest)
        .order_by(func.count().desc(), func.max(ch.c.path))
    )
    return _read(
        conn,
        query,
        dates=["first_changed", "last_changed"],
        ints=["changes", *(k.value for k in ChangeKind)],
    )


def churn_by_path(
    source: Source,
    name: str,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = 20,
) -> pd.DataFrame:
    """The most changed paths, most changes first (ties by path).

    Columns: tree, path, changes, added, removed, data_changed, acl_changed,
    first_changed, last_changed.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        df = _path_counts(conn, tree_id, since, until)
    if limit is not None:
        df = df.head(limit)
    df.insert(0, "tree", name)
    return df.reset_index(drop=True)


def subtree_at(paths: pd.Series, root: str, depth: int) -> pd.Series:
    """Each path's ancestor ``depth`` levels below ``root`` (or the path itself when
    it is shallower)."""
    base = root.rstrip("/")
    rel = paths.str.slice(len(base))
    head = rel.str.split("/").str.slice(1, depth + 1).str.join("/")
    return (base + "/" + head).where(head != "", root)


def churn_by_subtree(
    source: Source,
    name: str,
    *,
    depth: int = 1,
    since: When = None,
    until: When = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Changes summed per subtree ``depth`` levels below the tree's root.

    Columns: tree, subtree, changes, paths (distinct paths changed). Counting
    runs in SQL per path; only the (much smaller) per-path result is rolled up
    to subtrees here, since path prefixes at a depth are not portable SQL.
    """
    if depth < 1:
        raise InvalidInputError(f"subtree depth must be at least 1, not {depth}")
    with engine_of(source).connect() as conn:
        tree_id, root = _tree(conn, name)
        per_path = _path_counts(conn, tree_id, since, until)
    per_path["subtree"] = subtree_at(per_path["path"].astype(str), root, depth)
    df = (
        per_path.groupby("subtree", as_index=False)
        .agg(changes=("changes", "sum"), paths=("path", "count"))
        .sort_values(["changes", "subtree"], ascending=[False, True], kind="stable")
    )
    df["changes"] = df["changes"].astype("Int64")
    df["paths"] = df["paths"].astype("Int64")
    if limit is not None:
        df = df.head(limit)
    df.insert(0, "tree", name)
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- drift


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
            *_window(DriftRun.started_at, since, until),
        ]
        if name is not None:
            tree_id, _root = _tree(conn, name)
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
        return _read(conn, query, dates=["checked_at"], ints=["run_id", "snapshot_id", "count"])


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
            *_window(DriftRun.started_at, None, until),
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
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        ep = _episodes(tree_id, until)
        query = (
            select(
                literal(name).label("tree"),
                ep.c.path,
                ep.c.classification,
                ep.c.kind,
                ep.c.detected_at,
                ep.c.last_seen_at,
                ep.c.checks,
            )
            .where(ep.c.last_seq == ep.c.latest_seq, *_window(ep.c.detected_at, since, None))
            .order_by(ep.c.detected_at, ep.c.path)
        )
        df = _read(conn, query, dates=["detected_at", "last_seen_at"], ints=["checks"])
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
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        ep = _episodes(tree_id, until)
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
            select(
                literal(name).label("tree"),
                ep.c.path,
                ep.c.classification,
                ep.c.kind,
                ep.c.detected_at,
                ep.c.last_seen_at,
                ep.c.resolved_at,
                fixer.label("apply_id"),
            )
            .where(ep.c.resolved_at.is_not(None), *_window(ep.c.resolved_at, since, until))
            .subquery()
        )
        query = (
            select(resolved, Apply.actor, Apply.direction)
            .outerjoin(Apply, Apply.id == resolved.c.apply_id)
            .order_by(resolved.c.resolved_at, resolved.c.path)
        )
        df = _read(
            conn,
            query,
            dates=["detected_at", "last_seen_at", "resolved_at"],
            ints=["apply_id"],
        )
    df["time_to_reconcile"] = df["resolved_at"] - df["detected_at"]
    df["hours"] = df["time_to_reconcile"].dt.total_seconds() / 3600
    cols = [c for c in df.columns if c not in ("actor", "direction")] + ["actor", "direction"]
    return df[cols]


# --------------------------------------------------------------------------- applies


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
        tree_id, _root = _tree(conn, name)

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
            .where(Apply.tree_id == tree_id, *_window(Apply.started_at, since, until))
            .order_by(Apply.id)
        )
        df = _read(
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


# --------------------------------------------------------------------------- summary


def summary(source: Source, name: str, *, since: When = None, until: When = None) -> pd.DataFrame:
    """One row describing the tree and its history in the window.

    Columns: tree, root, hosts, snapshots, first_snapshot_at,
    last_snapshot_at, nodes, bytes (of the latest snapshot before ``until``),
    changes, drift_checks, open_drift, applies.
    """
    with engine_of(source).connect() as conn:
        tree_id, _root = _tree(conn, name)
        in_window = (Snapshot.tree_id == tree_id, *_window(Snapshot.started_at, since, until))

        def snap_stat(expr: Any, label: str) -> Any:
            return select(expr).where(*in_window).scalar_subquery().label(label)

        def latest(column: Any, label: str) -> Any:
            return (
                select(column)
                .where(Snapshot.tree_id == tree_id, *_window(Snapshot.started_at, None, until))
                .order_by(Snapshot.id.desc())
                .limit(1)
                .scalar_subquery()
                .label(label)
            )

        latest_check = (
            select(func.max(DriftRun.id))
            .where(
                DriftRun.tree_id == tree_id,
                DriftRun.against == "desired",
                *_window(DriftRun.started_at, None, until),
            )
            .scalar_subquery()
        )
        changes = func.coalesce(
            func.sum(
                case(
                    (
                        Snapshot.id != _baseline_id(tree_id),
                        Snapshot.added + Snapshot.removed + Snapshot.modified,
                    ),
                    else_=0,
                )
            ),
            0,
        )
        query = select(
            Tree.name.label("tree"),
            Tree.root,
            Tree.hosts,
            snap_stat(func.count(), "snapshots"),
            snap_stat(func.min(Snapshot.started_at), "first_snapshot_at"),
            snap_stat(func.max(Snapshot.started_at), "last_snapshot_at"),
            latest(Snapshot.node_count, "nodes"),
            latest(Snapshot.total_bytes, "bytes"),
            snap_stat(changes, "changes"),
            select(func.count())
            .where(
                DriftRun.tree_id == tree_id,
                DriftRun.against == "desired",
                *_window(DriftRun.started_at, since, until),
            )
            .scalar_subquery()
            .label("drift_checks"),
            # Open drift: what the latest check before ``until`` reported.
            select(func.count())
            .where(DriftItem.run_id == latest_check)
            .scalar_subquery()
            .label("open_drift"),
            select(func.count())
            .where(Apply.tree_id == tree_id, *_window(Apply.started_at, since, until))
            .scalar_subquery()
            .label("applies"),
        ).where(Tree.id == tree_id)
        df = _read(
            conn,
            query,
            dates=["first_snapshot_at", "last_snapshot_at"],
            ints=[
                "snapshots",
                "nodes",
                "bytes",
                "changes",
                "drift_checks",
                "open_drift",
                "applies",
            ],
        )
    return df


def history_note(summary_frame: pd.DataFrame) -> str | None:
    """A sentence to show instead of empty charts when there is too little history, else None."""
    row = summary_frame.iloc[0]
    snapshots = int(row["snapshots"] or 0)
    if snapshots == 0:
        return (
            f"Tree {row['tree']!r} has no snapshots in this window yet: "
            f"take one with 'zkdrift snapshot {row['tree']}'."
        )
    if snapshots == 1:
        return (
            f"Tree {row['tree']!r} has a single snapshot in this window "
            f"({int(row['nodes'] or 0):,} nodes): no history to compare yet."
        )
    return None
