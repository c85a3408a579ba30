"""Writing a temporal table: close the open rows that changed or vanished, open new ones.

``node_states`` (snapshots) and ``configurations`` (desired revisions) keep
one row per (tree, path, content) with ``valid_from``/``valid_to`` ids; the
rows with ``valid_to IS NULL`` are the current state. A write compares what
it is given with the open rows, path by path (by path digest), and touches
only what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from zkdrift.errors import ZkDriftError
from zkdrift.model import path_digest
from zkdrift.store.blobs import store_blobs
from zkdrift.store.bulk import bulk_insert, close_rows
from zkdrift.store.models import INLINE_MAX

Row = tuple[Any, ...]


class ConcurrentWriteError(ZkDriftError):
    """Two writers changed one tree's history at once; the later one wrote nothing."""


# What put() returns for a path whose open row already holds what it was given.
UNCHANGED: Final = ("unchanged",)


class TemporalWrite:
    """One write of a tree's temporal rows, collected first, then sent in bulk.

    ``compare`` names the columns the caller compares with (after the row id,
    in that order, in what :meth:`put` returns).
    """

    def __init__(self, session: Session, model: Any, tree_id: int, *compare: str) -> None:
        self.session = session
        self.model = model
        self.tree_id = tree_id
        columns = [getattr(model, c) for c in compare]
        self._open: dict[str, Row] = {
            pd: (row_id, *rest)
            for row_id, pd, *rest in session.execute(
                select(model.id, model.path_digest, *columns).where(
                    model.tree_id == tree_id, model.valid_to.is_(None)
                )
            )
        }
        self._close: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._values: dict[str, bytes] = {}

    def put(
        self,
        path: str,
        data: bytes,
        data_digest: str,
        columns: Mapping[str, Any],
        *,
        key: Row,
    ) -> Row | None:
        """Offer what ``path`` holds now: its data and the table's other ``columns``.

        ``key`` holds the leading ``compare`` values of the new content. Returns
        :data:`UNCHANGED` when the open row starts with the same values (nothing
        is written), else the open row it replaces (``(id, *compare)``), or None
        for a path without one (an addition).
        """
        pd = path_digest(path)
        previous = self._open.pop(pd, None)
        if previous is not None and previous[1 : 1 + len(key)] == key:
            return UNCHANGED
        if previous is not None:
            self._close.append(previous[0])
        self._rows.append(
            {
                "tree_id": self.tree_id,
                "path_digest": pd,
                "path": path,
                "data_digest": data_digest,
                "data": data if len(data) <= INLINE_MAX else None,
                "data_length": len(data),
                **columns,
            }
        )
        if len(data) > INLINE_MAX:
            self._values[data_digest] = data
        return previous

    @property
    def removed(self) -> int:
        """Open rows no path was offered for: their paths are gone."""
        return len(self._open)

    @property
    def changed(self) -> bool:
        return bool(self._close or self._rows or self._open)

    def commit(self, version_id: int) -> None:
        """Close the replaced and vanished rows at ``version_id`` and open the new ones
        from it, in the session's transaction.

        Raises :class:`ConcurrentWriteError` (the transaction must roll back) when a
        row to close was not open any more: another writer got there first.
        """
        self._close.extend(row[0] for row in self._open.values())
        self._open.clear()
        closed = close_rows(self.session, self.model, self._close, version_id)
        if closed != len(self._close):
            raise ConcurrentWriteError(
                f"another writer changed the {self.model.__tablename__} of this tree while"
                f" it was being written ({closed} of {len(self._close)} rows were still"
                " open); nothing was written, run it again"
            )
        store_blobs(self.session, self._values)
        for row in self._rows:
            row["valid_from"] = version_id
        bulk_insert(self.session, self.model, self._rows)
