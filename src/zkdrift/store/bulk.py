"""Bulk writes shared by the repositories: chunked inserts and temporal row closing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, insert, update
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


def ordered_rows(session: Session, query: Select[Any], key: Any, chunk: int) -> Iterator[Any]:
    """The rows of ``query`` in ``key`` order (unique per row), holding ``chunk`` at a time.

    SQLite's cursor streams, and one connection may step several statements at
    once: one statement, sorted once. Other drivers buffer a whole result (or
    block the connection while streaming one), so there each chunk is a query of
    its own after the last key seen (keyset pagination). Rows come through Core,
    without the ORM's per-row work.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        result = connection.execute(query.order_by(key).execution_options(yield_per=chunk))
        for part in result.partitions():
            yield from part
        return
    last: Any = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = connection.execute(page.order_by(key).limit(chunk)).all()
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1][0]
