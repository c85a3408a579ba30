"""How a tree got where it is: when each path was created, changed and deleted.

Built from the temporal node-state table: a path's rows, ordered by the
snapshot they became valid in, are its history. Consecutive rows whose data
and ACL are equal differ only in stat (a child came or went) and are not
events. A gap between one row's end and the next row's start means the path
was deleted and later created again.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from zkdrift import paths
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.model import Acl, Znode
from zkdrift.redact import Redactor, node_json
from zkdrift.store import trees as tree_store
from zkdrift.store.blobs import load_blobs
from zkdrift.store.models import NodeState, Snapshot
from zkdrift.store.snapshots import acl_from_json
from zkdrift.vocabulary import iso


class EventKind(enum.StrEnum):
    INITIAL = "initial"  # present in the tree's first snapshot
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"


@dataclass(frozen=True)
class Value:
    """One recorded content of a path: bytes (render through a Redactor), digest, version."""

    data: bytes
    digest: str
    version: int
    acl: tuple[Acl, ...] | None


@dataclass(frozen=True)
class HistoryEvent:
    """One event of one path, seen at ``snapshot_id`` (taken at ``at``)."""

    path: str
    kind: EventKind
    snapshot_id: int
    at: dt.datetime
    before: Value | None
    after: Value | None

    def as_json(self, redactor: Redactor) -> dict[str, Any]:
        def value(v: Value | None) -> dict[str, Any] | None:
            out = None if v is None else node_json(redactor, Znode(self.path, v.data, None, v.acl))
            if out is not None and v is not None:
                out["version"] = v.version
            return out

        return {
            "path": self.path,
            "event": str(self.kind),
            "snapshot_id": self.snapshot_id,
            "at": iso(self.at),
            "before": value(self.before),
            "after": value(self.after),
        }

    @property
    def acl_changed(self) -> bool:
        return (
            self.before is not None
            and self.after is not None
            and self.before.acl is not None
            and self.after.acl is not None
            and set(self.before.acl) != set(self.after.acl)
        )


@dataclass(frozen=True)
class _Row:
    path: str
    data_digest: str
    version: int
    acl: tuple[Acl, ...] | None
    valid_from: int
    valid_to: int | None


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def path_history(
    app: App, name: str, path: str | None = None, *, include_initial: bool = True
) -> list[HistoryEvent]:
    """Events of ``path`` and everything below it (the whole tree when None).

    Sorted by snapshot, then path. ``include_initial=False`` leaves out the
    ``initial`` events (every node of the first snapshot), which for a whole
    tree are mostly noise.
    """
    if path is not None:
        paths.validate_path(path)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        if path is not None and not paths.is_under(path, tree.root):
            raise InvalidInputError(
                f"{path!r} is not under the root {tree.root!r} of tree {name!r}"
            )
        taken = dict(
            session.execute(
                select(Snapshot.id, Snapshot.started_at).where(Snapshot.tree_id == tree.id)
            ).all()
        )
        query = select(
            NodeState.path,
            NodeState.data_digest,
            NodeState.version,
            NodeState.acl,
            NodeState.valid_from,
            NodeState.valid_to,
            NodeState.data,
        ).where(NodeState.tree_id == tree.id)
        if path is not None and path != "/":
            query = query.where(
                or_(NodeState.path == path, NodeState.path.like(_like_prefix(path), escape="\\"))
            )
        rows: list[_Row] = []
        inline: dict[str, bytes] = {}  # values held in the rows themselves
        for p, dd, v, acl, vf, vt, data in session.execute(query):
            rows.append(_Row(p, dd, v, acl_from_json(acl), vf, vt))
            if data is not None:
                inline[dd] = bytes(data)
        events = _events(rows, min(taken, default=0), taken, include_initial)
        wanted = {v.digest for e in events for v in (e.before, e.after) if v is not None}
        values = {d: inline[d] for d in wanted if d in inline}
        values.update(load_blobs(session, wanted - values.keys()))
    return [_with_values(e, values) for e in events]


def _value(row: _Row) -> Value:
    return Value(b"", row.data_digest, row.version, row.acl)


def _events(
    rows: Iterable[_Row], first_snapshot: int, taken: dict[int, dt.datetime], include_initial: bool
) -> list[HistoryEvent]:
    by_path: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_path[row.path].append(row)
    events: list[HistoryEvent] = []

    def add(path: str, kind: EventKind, sid: int, before: _Row | None, after: _Row | None) -> None:
        events.append(
            HistoryEvent(
                path,
                kind,
                sid,
                taken[sid],
                None if before is None else _value(before),
                None if after is None else _value(after),
            )
        )

    for path, versions in by_path.items():
        versions.sort(key=lambda r: r.valid_from)
        previous: _Row | None = None
        for row in versions:
            if previous is None or previous.valid_to != row.valid_from:
                if previous is not None and previous.valid_to is not None:
                    add(path, EventKind.DELETED, previous.valid_to, previous, None)
                if row.valid_from == first_snapshot:
                    if include_initial:
                        add(path, EventKind.INITIAL, row.valid_from, None, row)
                else:
                    add(path, EventKind.CREATED, row.valid_from, None, row)
            elif previous.data_digest != row.data_digest or (
                previous.acl is not None and row.acl is not None and previous.acl != row.acl
            ):
                add(path, EventKind.CHANGED, row.valid_from, previous, row)
            else:
                # Same content, new stat (children or a no-op set): keep the
                # newest row as the one later changes are compared with.
                pass
            previous = row
        if previous is not None and previous.valid_to is not None:
            add(path, EventKind.DELETED, previous.valid_to, previous, None)
    events.sort(key=lambda e: (e.snapshot_id, e.path))
    return events


def _with_values(event: HistoryEvent, values: dict[str, bytes]) -> HistoryEvent:
    def fill(v: Value | None) -> Value | None:
        return None if v is None else Value(values[v.digest], v.digest, v.version, v.acl)

    return HistoryEvent(
        event.path, event.kind, event.snapshot_id, event.at, fill(event.before), fill(event.after)
    )
