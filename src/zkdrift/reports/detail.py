"""The verdict and what drifted, for people: where a tree stands, which paths
differ, desired -> live (secrets redacted), since when, and who last changed them.

Every cell of :func:`open_drift_detail` is display text (the shared
vocabulary of :mod:`zkdrift.vocabulary`): the notebooks, the Prefect
artifacts and anything else that shows drift show the same words.

Who changed a path is what the store can tell:

- the desired side: the revision that last set (or removed) the path, with
  its author;
- the live side: the apply or adopt that made the change (from the audit),
  or, when none did, the snapshot that first saw it: a change made outside
  zkdrift, whose author ZooKeeper does not record;
- the last apply or adopt that touched the path at all, for context.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from zkdrift.model import Acl, ChangeKind, DriftClass, path_digest
from zkdrift.redact import Redactor
from zkdrift.reports.common import Source, engine_of, redactor_of, tree_row
from zkdrift.reports.drift import open_drift
from zkdrift.reports.history import MAX_VALUE_CHARS, _changes
from zkdrift.reports.window import When, parse_when, utcnow
from zkdrift.store.models import (
    Apply,
    ApplyOp,
    Blob,
    Configuration,
    DesiredRevision,
    DriftItem,
    DriftRun,
    NodeState,
    Snapshot,
)
from zkdrift.vocabulary import (
    DRIFT_CLASSES,
    IN_SYNC,
    OBSERVED_ONLY,
    age_text,
    drift_kind,
    headline,
    observed_headline,
    observed_only,
    unchecked_headline,
    utc_text,
    write_verb,
)

# Paths per IN (...) list: well under every database's limit on bound parameters.
_CHUNK = 500

# The columns of :func:`open_drift_detail`, in order.
DETAIL_COLUMNS = (
    "path",
    "kind",
    "classification",
    "desired",
    "live",
    "since",
    "age",
    "last_changed_by",
)

OUT_OF_SYNC = "out of sync"
NOT_CHECKED = "not checked"

# What a report says of a tree without a desired state (the shared words).
observed_only_text = observed_only


@dataclass(frozen=True)
class Verdict:
    """Where a tree stands against its desired state, as of the latest drift check.

    ``state`` is ``"in sync"``, ``"out of sync"``, ``"observed only"`` (no
    desired state) or ``"not checked"`` (a desired state, no check yet).
    ``headline`` is the sentence to open a report with, next step included;
    ``since`` is when the oldest open drift was first detected.
    """

    tree: str
    state: str
    headline: str
    open_paths: int
    since: dt.datetime | None
    checked_at: dt.datetime | None
    desired_revision: int | None
    as_of: dt.datetime

    @property
    def observed_only(self) -> bool:
        return self.state == OBSERVED_ONLY

    @property
    def in_sync(self) -> bool:
        return self.state == IN_SYNC

    @property
    def checked_text(self) -> str:
        """``latest drift check 2026-12-01 14:12:05 UTC (3 min before ...)`` or empty."""
        if self.checked_at is None:
            return ""
        return (
            f"latest drift check {utc_text(self.checked_at)} "
            f"({age_text(self.as_of - self.checked_at)} ago), "
            f"against desired revision {self.desired_revision}"
        )


def _latest_check(conn: Connection, tree_id: int, until: When) -> Any:
    """The tree's latest drift check against desired before ``until`` (a row), or None."""
    query = select(
        DriftRun.id, DriftRun.snapshot_id, DriftRun.desired_revision_id, DriftRun.started_at
    ).where(DriftRun.tree_id == tree_id, DriftRun.against == "desired")
    hi = parse_when(until)
    if hi is not None:
        query = query.where(DriftRun.started_at < hi)
    return conn.execute(query.order_by(DriftRun.id.desc()).limit(1)).first()


def _revision_number(conn: Connection, revision_id: int | None) -> int | None:
    if revision_id is None:
        return None
    number = conn.scalar(select(DesiredRevision.number).where(DesiredRevision.id == revision_id))
    return None if number is None else int(number)


def drift_verdict(source: Source, name: str, *, until: When = None) -> Verdict:
    """Where tree ``name`` stands, as of the latest drift check before ``until`` (now).

    In sync, out of sync (how many paths, since when, what to run), observed
    only (no desired state: how to give it one) or not checked yet.
    """
    as_of = parse_when(until) or utcnow()
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        latest_revision = conn.scalar(
            select(func.max(DesiredRevision.number)).where(DesiredRevision.tree_id == tree_id)
        )
        check = _latest_check(conn, tree_id, until)
        checked_revision = None if check is None else _revision_number(conn, check[2])
    if latest_revision is None:
        return Verdict(name, OBSERVED_ONLY, observed_headline(name), 0, None, None, None, as_of)
    if check is None:
        revision = int(latest_revision)
        text = unchecked_headline(name, revision)
        return Verdict(name, NOT_CHECKED, text, 0, None, None, revision, as_of)
    drifted = open_drift(source, name, until=until)
    since = None if drifted.empty else drifted["detected_at"].min().to_pydatetime()
    count = len(drifted)
    return Verdict(
        tree=name,
        state=IN_SYNC if count == 0 else OUT_OF_SYNC,
        headline=headline(name, count, since),
        open_paths=count,
        since=since,
        checked_at=check[3],
        desired_revision=checked_revision,
        as_of=as_of,
    )


# -- what drifted --------------------------------------------------------------------


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _acl_text(acl: Any) -> str:
    if not acl:
        return ""
    return "ACL " + ", ".join(Acl(int(p), str(s), str(i)).render() for p, s, i in acl)


def _valid_at(model: Any, version: int | None) -> Any:
    """Rows of a temporal table valid at ``version`` (``valid_to`` is exclusive)."""
    if version is None:
        return false()
    return and_(
        model.valid_from <= version, or_(model.valid_to.is_(None), model.valid_to > version)
    )


def _values(conn: Connection, tree_id: int, check: Any, digests: Sequence[str]) -> pd.DataFrame:
    """The check's items of the paths with ``digests``, with the desired and live data
    and ACLs it compared."""
    frames = [_values_of(conn, tree_id, check, chunk) for chunk in _chunks(digests)]
    return pd.concat(frames, ignore_index=True) if frames else _values_of(conn, tree_id, check, [])


def _values_of(conn: Connection, tree_id: int, check: Any, digests: Sequence[str]) -> pd.DataFrame:
    run_id, snapshot_id, revision_id = check[0], check[1], check[2]
    cfg, live = aliased(Configuration), aliased(NodeState)
    desired_blob, live_blob = aliased(Blob), aliased(Blob)
    query = (
        select(
            DriftItem.path,
            DriftItem.path_digest,
            DriftItem.kind,
            DriftItem.classification,
            func.coalesce(cfg.data, desired_blob.data).label("desired_data"),
            cfg.acl.label("desired_acl"),
            cfg.valid_from.label("desired_from"),
            func.coalesce(live.data, live_blob.data).label("live_data"),
            live.acl.label("live_acl"),
        )
        .select_from(DriftItem)
        .outerjoin(
            cfg,
            and_(
                cfg.tree_id == tree_id,
                cfg.path_digest == DriftItem.path_digest,
                _valid_at(cfg, revision_id),
            ),
        )
        .outerjoin(desired_blob, desired_blob.digest == cfg.data_digest)
        .outerjoin(
            live,
            and_(
                live.tree_id == tree_id,
                live.path_digest == DriftItem.path_digest,
                _valid_at(live, snapshot_id),
            ),
        )
        .outerjoin(live_blob, live_blob.digest == live.data_digest)
        .where(DriftItem.run_id == run_id, DriftItem.path_digest.in_(digests))
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(), columns=list(query.selected_columns.keys())
    )


def _live_changes(
    conn: Connection, tree_id: int, snapshot_id: int | None, digests: Sequence[str]
) -> dict[str, Any]:
    """Per path digest: the latest change live saw up to ``snapshot_id`` (kind, the
    snapshot that first saw it, its time and the time of the snapshot before it)."""
    found: dict[str, Any] = {}
    if snapshot_id is None:
        return found
    for chunk in _chunks(digests):
        ch = _changes(tree_id, chunk)
        before = aliased(Snapshot)
        previous_at = (
            select(before.started_at)
            .where(before.tree_id == tree_id, before.id < ch.c.snapshot_id)
            .order_by(before.id.desc())
            .limit(1)
            .correlate(ch)
            .scalar_subquery()
        )
        query = (
            select(
                ch.c.path_digest,
                ch.c.snapshot_id,
                ch.c.kind,
                Snapshot.started_at,
                previous_at.label("previous_at"),
            )
            .join(Snapshot, Snapshot.id == ch.c.snapshot_id)
            .where(ch.c.snapshot_id <= snapshot_id)
            .order_by(ch.c.snapshot_id)
        )
        for row in conn.execute(query):
            found[row[0]] = row  # ordered by snapshot: the last one wins
    return found


def _first_snapshot(conn: Connection, tree_id: int) -> Any:
    return conn.execute(
        select(Snapshot.id, Snapshot.started_at)
        .where(Snapshot.tree_id == tree_id)
        .order_by(Snapshot.id)
        .limit(1)
    ).first()


def _desired_changes(
    conn: Connection, tree_id: int, revision_id: int | None, values: pd.DataFrame
) -> dict[str, Any]:
    """Per path digest: the desired revision that last set the path (the one its
    current row starts at) or, for a path desired lacks, the one that removed it."""
    found: dict[str, Any] = {}
    if revision_id is None or values.empty:
        return found
    revisions: dict[str, int] = {
        str(d): int(r)
        for d, r in zip(values["path_digest"], values["desired_from"], strict=True)
        if pd.notna(r)
    }
    unset = [str(d) for d in values.loc[values["desired_from"].isna(), "path_digest"]]
    for chunk in _chunks(unset):
        query = (
            select(Configuration.path_digest, func.max(Configuration.valid_to))
            .where(
                Configuration.tree_id == tree_id,
                Configuration.path_digest.in_(chunk),
                Configuration.valid_to <= revision_id,
            )
            .group_by(Configuration.path_digest)
        )
        revisions.update({str(d): int(r) for d, r in conn.execute(query) if r is not None})
    wanted = sorted(set(revisions.values()))
    info: dict[int, Any] = {}
    for start in range(0, len(wanted), _CHUNK):
        by_id = select(
            DesiredRevision.id,
            DesiredRevision.number,
            DesiredRevision.author,
            DesiredRevision.created_at,
            DesiredRevision.source_commit,
            DesiredRevision.source_author,
            DesiredRevision.override,
        ).where(DesiredRevision.id.in_(wanted[start : start + _CHUNK]))
        info.update({int(row[0]): row for row in conn.execute(by_id)})
    for digest, revision in revisions.items():
        if revision in info:
            found[digest] = info[revision]
    return found


_WRITES = ("applied", "adopted")


def _last_writes(
    conn: Connection, tree_id: int, paths: Sequence[str], until: When
) -> dict[str, Any]:
    """Per path: the latest apply or adopt (not a dry run) whose op on the path took."""
    found: dict[str, Any] = {}
    hi = parse_when(until)
    for chunk in _chunks(paths):
        query = (
            select(ApplyOp.path, Apply.id, Apply.actor, Apply.direction, Apply.started_at)
            .join(Apply, Apply.id == ApplyOp.apply_id)
            .where(
                Apply.tree_id == tree_id,
                Apply.dry_run.is_(False),
                ApplyOp.outcome.in_(_WRITES),
                ApplyOp.path.in_(chunk),
                *([] if hi is None else [Apply.started_at < hi]),
            )
            .order_by(Apply.id)
        )
        for row in conn.execute(query):
            found[str(row[0])] = row  # ordered by apply: the last one wins
    return found


def _write_text(write: Any) -> str:
    """``bob (apply #3, 2026-12-01 14:12:05 UTC)``."""
    verb = write_verb(write[3])
    return f"{write[2]} ({verb} #{write[1]}, {utc_text(write[4])})"


def _desired_text(revision: Any) -> str:
    """``carol (desired revision 4, TIME)``; from Git, the commit's author and the commit;
    a hand-made change to a Git-sourced tree, marked as an override."""
    commit, commit_author, override = revision[4], revision[5], revision[6]
    if commit:
        return (
            f"{commit_author or revision[2]} (desired revision {revision[1]} from commit"
            f" {str(commit)[:12]}, {utc_text(revision[3])})"
        )
    what = "override, " if override else ""
    return f"{revision[2]} (desired revision {revision[1]}, {what}{utc_text(revision[3])})"


def _made_by(change: Any, write: Any) -> bool:
    """Whether apply ``write`` made live ``change``: it ran after the snapshot before
    the change and no later than the snapshot that first saw it."""
    seen, previous = change[3], change[4]
    return (
        write is not None
        and write[3] != "adopt"  # an adopt writes desired, never live
        and write[4] <= seen
        and (previous is None or write[4] > previous)
    )


def _live_text(change: Any, write: Any, first: Any) -> str:
    """Who changed live: the apply that made the change, else the snapshot that saw it."""
    if change is None:
        return "" if first is None else f"live as in the first snapshot ({utc_text(first[1])})"
    if _made_by(change, write):
        return _write_text(write)
    return f"outside zkdrift, first seen {utc_text(change[3])} (snapshot {change[1]})"


def open_drift_detail(
    source: Source,
    name: str,
    redactor: Redactor | None = None,
    *,
    since: When = None,
    until: When = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """What drifted, for people: one row per path the latest drift check (before
    ``until``) still reports, oldest first (the oldest ``limit`` of them).

    Columns (all display text, empty when there is nothing to show):

    - ``path``;
    - ``kind``: ``changed``, ``missing live``, ``live only`` or ``ACL changed``;
    - ``classification``: ``drift`` (live moved), ``pending`` (desired moved)
      or ``conflict`` (both);
    - ``desired`` and ``live``: the values the check compared, rendered by
      ``redactor`` (the App's by default): secrets as their redaction
      placeholder, never their content; long values cut; ACLs for ``ACL
      changed``;
    - ``since``: when a check first reported it (UTC, to the second);
    - ``age``: how long ago that was (``3 h 12 min``), as of ``until`` or now;
    - ``last_changed_by``: who moved, and how the store knows:
      ``carol (desired revision 4, <UTC time>)`` for pending (the revision's
      author); for drift, ``bob (apply #3, <UTC time>)`` when an apply made
      the live change (from the audit), else ``outside zkdrift, first seen
      <UTC time> (snapshot 12)``: the snapshot that first saw it (ZooKeeper
      does not record who), followed by ``; last zkdrift run: alice (adopt
      #1, <UTC time>)``, the last apply or adopt that touched the path;
      ``desired: ...; live: ...`` for a conflict.

    ``since`` keeps drift first detected at or after it; ``limit`` bounds the
    rows (the values and the audit are read for those only).
    """
    as_of = parse_when(until) or utcnow()
    rd = redactor_of(source, redactor)
    drifted = open_drift(source, name, since=since, until=until)
    if limit is not None:
        drifted = drifted.head(limit)
    if drifted.empty:
        return pd.DataFrame({col: pd.Series(dtype=object) for col in DETAIL_COLUMNS})
    digests = [path_digest(str(p)) for p in drifted["path"]]
    with engine_of(source).connect() as conn:
        tree_id, _root = tree_row(conn, name)
        check = _latest_check(conn, tree_id, until)
        values = _values(conn, tree_id, check, digests)
        live_changes = _live_changes(conn, tree_id, check[1], digests)
        desired_changes = _desired_changes(conn, tree_id, check[2], values)
        writes = _last_writes(conn, tree_id, [str(p) for p in values["path"]], until)
        first = _first_snapshot(conn, tree_id)
    by_path: dict[str, Mapping[Any, Any]] = {
        str(row["path"]): row for row in values.to_dict("records")
    }
    rows: list[dict[str, str]] = []
    for item in drifted.itertuples(index=False):
        path = str(item.path)
        row = by_path.get(path, {})
        kind = ChangeKind(str(item.kind))
        desired, live = _shown(rd, path, kind, row)
        digest = row.get("path_digest")
        cls = DriftClass(str(item.classification))
        detected = _pydt(item.detected_at)
        rows.append(
            {
                "path": path,
                "kind": drift_kind(kind),
                "classification": DRIFT_CLASSES[cls],
                "desired": desired,
                "live": live,
                "since": utc_text(detected),
                "age": age_text(as_of - detected),
                "last_changed_by": _who(
                    cls,
                    live_changes.get(str(digest)),
                    desired_changes.get(str(digest)),
                    writes.get(path),
                    first,
                ),
            }
        )
    return pd.DataFrame(rows, columns=list(DETAIL_COLUMNS))


def _pydt(value: Any) -> dt.datetime:
    when: dt.datetime = pd.Timestamp(value).to_pydatetime()
    return when


def _shown(rd: Redactor, path: str, kind: ChangeKind, row: Mapping[Any, Any]) -> tuple[str, str]:
    """The desired and live sides as display text: values, or ACLs for an ACL change."""
    if kind is ChangeKind.ACL_CHANGED:
        return _acl_text(row.get("desired_acl")), _acl_text(row.get("live_acl"))

    def value(data: Any) -> str:
        if data is None or (isinstance(data, float) and pd.isna(data)):
            return ""
        return _cut(rd.render(path, bytes(data)))

    desired = "" if kind is ChangeKind.REMOVED else value(row.get("desired_data"))
    live = "" if kind is ChangeKind.ADDED else value(row.get("live_data"))
    return desired, live


def _who(cls: DriftClass, change: Any, revision: Any, write: Any, first: Any) -> str:
    """``last_changed_by``: the side that moved, from what the store recorded."""
    desired = "" if revision is None else _desired_text(revision)
    live = _live_text(change, write, first)
    if cls is DriftClass.PENDING:
        return desired or live
    if cls is DriftClass.CONFLICT:
        sides = (desired and f"desired: {desired}", live and f"live: {live}")
        return "; ".join(side for side in sides if side)
    if write is not None and not (change is not None and _made_by(change, write)):
        # Drift: the live change, and the last time zkdrift itself wrote the path.
        last = f"last zkdrift run: {_write_text(write)}"
        return f"{live}; {last}" if live else last
    return live


__all__ = [
    "DETAIL_COLUMNS",
    "NOT_CHECKED",
    "OBSERVED_ONLY",
    "OUT_OF_SYNC",
    "Verdict",
    "drift_verdict",
    "observed_only_text",
    "open_drift_detail",
]
