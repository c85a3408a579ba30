"""Bulk writes shared by the repositories: chunked inserts and temporal row closing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, func, insert, select, update
from sqlalchemy.orm import Session

from zkdrift.model import path_digest

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


def insert_plain(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` of values the driver takes as they are (integers, text, bytes,
    JSON as its text, None), straight through the driver's ``executemany``, a few
    thousand per call: SQLAlchemy's bind processing costs about 20 us a row, which a
    million rows notice."""
    if not rows:
        return
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    )
    for batch in chunks(list(rows), INSERT_CHUNK):
        connection.exec_driver_sql(statement, batch)


def by_path_digest(
    session: Session, query: Select[Any], column: Any, paths: Iterable[str]
) -> list[Any]:
    """The rows of ``query`` whose ``column`` (a path digest) is the digest of one of
    ``paths``, one ``IN (...)`` of :data:`CHUNK` digests per statement, as Core rows.

    ``query`` should leave the validity range of its rows out of any index (see
    :func:`not_indexed`): the path digest is what finds a few rows among millions.
    """
    return by_digest(session, query, column, {path_digest(p) for p in paths})


def by_digest(
    session: Session, query: Select[Any], column: Any, digests: Iterable[str]
) -> list[Any]:
    """:func:`by_path_digest` for path digests already worked out (hex)."""
    rows: list[Any] = []
    for batch in chunks(list(digests)):
        rows.extend(session.execute(query.where(column.in_(batch))).all())
    return rows


def not_indexed(column: Any) -> Any:
    """``column`` as an expression no index serves (``column + 0``), for a condition
    that must filter rows an index on other columns found, not pick the index.

    Without statistics SQLite takes a range on an indexed validity column
    (``valid_from <= N``) over an ``IN`` list of path digests, and then reads every
    row of the tree for each chunk of digests.
    """
    return column + 0


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


def ordered_rows(
    session: Session, query: Select[Any], key: Any, chunk: int, *, tree_id: int | None = None
) -> Iterator[Any]:
    """The rows of ``query`` in ``key`` order (unique per row), holding ``chunk`` at a time.

    SQLite's cursor streams, and one connection may step several statements at
    once: one statement, sorted once. Other drivers buffer a whole result (or
    block the connection while streaming one), so there each chunk is a query of
    its own after the last key seen (keyset pagination). Rows come through Core,
    without the ORM's per-row work.

    With ``tree_id`` (the tree ``query`` selects from its only table), SQLite
    reads that table in order and sorts, instead of following the index, when
    the tree holds a large part of it (see :func:`scan_beats_index`).
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        table = None
        if tree_id is not None:
            (table,) = query.get_final_froms()
            if not scan_beats_index(session, table, tree_id):
                table = None
        # Chained in C: a million rows pass through no Python frame of ours here.
        return chain.from_iterable(
            _sqlite_chunks(session, query.order_by(key), chunk, not_indexed=table)
        )
    return _keyset_rows(connection, query, key, chunk)


# The share of a table's rows one tree must hold for SQLite to read the whole table
# and sort, rather than follow the tree's index to each row (see scan_beats_index).
SCAN_SHARE = 0.25


def scan_beats_index(session: Session, table: Any, tree_id: int) -> bool:
    """Whether reading all of ``table`` and sorting beats following an index in key
    order to the rows of one tree, on SQLite.

    Followed in path digest order, an index leads to the rows at random: at a
    million rows about 2.2 us a row, where reading the table in order and
    sorting (in temporary files past the cache, so memory stays flat) takes
    about 0.3 us a row of the table. Counting both costs about 0.1 us a row,
    through indexes.
    """
    rows = session.execute(select(func.count()).select_from(table)).scalar_one()
    if not rows:
        return False
    mine = session.execute(
        select(func.count()).select_from(table).where(table.c.tree_id == tree_id)
    ).scalar_one()
    return bool(mine >= SCAN_SHARE * rows)


def _keyset_rows(connection: Connection, query: Select[Any], key: Any, chunk: int) -> Iterator[Any]:
    last: Any = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = connection.execute(page.order_by(key).limit(chunk)).all()
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1][0]


def streamed_chunks(
    session: Session, query: Select[Any], order: Any, chunk: int, *, plain: bool = False
) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in ``order`` (None: as the database finds them), ``chunk``
    rows at a time, however many there are. ``plain`` promises columns that need no
    result processing (text, integers): SQLite then hands back the driver's tuples.

    On SQLite the statement streams on the session's own connection. Other
    drivers buffer a whole result on the session's connection, so there the
    rows stream through a connection of their own (an unbuffered cursor); they
    then see what is committed, which is all a read-only export needs.
    """
    connection = session.connection()
    if order is not None:
        query = query.order_by(order)
    if connection.dialect.name == "sqlite":
        if plain:
            yield from _sqlite_chunks(session, query, chunk)
            return
        result = connection.execute(query.execution_options(yield_per=chunk))
        yield from result.partitions()
        return
    with connection.engine.connect() as own:
        if own.dialect.name in ("mysql", "mariadb"):
            # Sort on whole paths (up to 64 KiB), not on their first 1,024 bytes;
            # a longer key needs a larger sort buffer than the 2 MiB default.
            own.exec_driver_sql("SET SESSION max_sort_length = 65536")
            own.exec_driver_sql("SET SESSION sort_buffer_size = 33554432")
        result = own.execution_options(stream_results=True, yield_per=chunk).execute(query)
        yield from result.partitions()


def _sqlite_chunks(
    session: Session, query: Select[Any], chunk: int, *, not_indexed: Any = None
) -> Iterator[list[Any]]:
    """A SQLite statement's rows as the driver returns them, ``chunk`` at a time, on the
    session's own connection (its transaction).

    SQLAlchemy's result rows cost more than the query for a million rows of
    plain strings and integers; the streams want tuples. Only for columns that
    need no result processing (text, integers, JSON read as text).
    """
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    positional = [params[name] for name in compiled.positiontup or ()]
    sql = str(compiled)
    if not_indexed is not None:
        # SQLAlchemy has no SQLite index hints: the table named once, hinted here.
        sql, found = re.subn(
            rf"\bFROM {not_indexed.name}\b", f"FROM {not_indexed.name} NOT INDEXED", sql
        )
        if found != 1:
            raise ValueError(f"expected one FROM {not_indexed.name} in {sql!r}")
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, positional)
        while rows := cursor.fetchmany(chunk):
            yield rows
    finally:
        cursor.close()
