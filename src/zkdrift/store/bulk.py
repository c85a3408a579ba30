"""Bulk writes shared by the repositories: chunked inserts and temporal row closing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

CHUNK = 500
INSERT_CHUNK = 2000
T = TypeVar("T")


def chunks(items: list[T], size: int = CHUNK) -> Iterable[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def bulk_insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` with executemany, a few thousand per statement."""
    for batch in chunks(rows, INSERT_CHUNK):
        session.execute(insert(model), batch)


def close_rows(session: Session, model: Any, ids: Sequence[int], valid_to: int) -> int:
    """End the validity of open temporal rows (``valid_to``) by primary key; returns
    how many were open (a row another writer closed meanwhile is left alone)."""
    closed = 0
    for batch in chunks(list(ids)):
        result = session.execute(
            update(model)
            .where(model.id.in_(batch), model.valid_to.is_(None))
            .values(valid_to=valid_to),
            execution_options={"synchronize_session": False},
        )
        closed += result.rowcount  # type: ignore[attr-defined]
    return closed
