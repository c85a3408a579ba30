"""Content-addressed value storage shared by snapshots, desired state and plans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Insert, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from zkdrift.store.bulk import CHUNK, INSERT_CHUNK, chunks
from zkdrift.store.models import Blob


def _insert_new(session: Session) -> Insert:
    """An insert of values that skips a digest stored a moment ago by another
    transaction (two trees, or two writers, holding the same new value)."""
    dialect = session.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(Blob)
        return statement.on_duplicate_key_update(digest=statement.inserted.digest)
    if dialect == "postgresql":
        return postgresql.insert(Blob).on_conflict_do_nothing(index_elements=["digest"])
    return sqlite.insert(Blob).on_conflict_do_nothing(index_elements=["digest"])


def store_blobs(session: Session, values: Mapping[str, bytes]) -> int:
    """Insert the values whose digests are not stored yet; returns how many were new.

    Digests are looked up first, so a value already stored is never sent
    again; one that another transaction stores at the same time is skipped.
    """
    if not values:
        return 0
    digests = list(values)
    existing: set[str] = set()
    for chunk in chunks(digests):
        existing.update(session.scalars(select(Blob.digest).where(Blob.digest.in_(chunk))))
    missing: list[dict[str, Any]] = [
        {"digest": d, "size": len(values[d]), "data": values[d]}
        for d in digests
        if d not in existing
    ]
    # Large values go in smaller groups so one statement stays well under
    # max_allowed_packet on MySQL.
    insert = _insert_new(session)
    batch: list[dict[str, Any]] = []
    size = 0
    for row in missing:
        batch.append(row)
        size += int(row["size"])
        if size > 4 * 1024 * 1024 or len(batch) >= CHUNK:
            session.execute(insert, batch)
            batch, size = [], 0
    if batch:
        session.execute(insert, batch)
    return len(missing)


def store_blob_keys(connection: Connection, values: Mapping[bytes, bytes]) -> int:
    """:func:`store_blobs` for digests as bytes (:func:`zkdrift.model.value_key`), sent
    to the driver as they are: the path a capture of a million nodes takes.

    Every value is offered to an insert that skips digests already stored. A
    capture offers only the values of changed and added nodes, nearly all of
    them new, so looking digests up first would cost a round trip per chunk
    to save almost nothing. Returns how many values were offered.
    """
    if not values:
        return 0
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    insert = f"INSERT INTO blobs (digest, size, data) VALUES ({mark}, {mark}, {mark})"
    if connection.dialect.name in ("mysql", "mariadb"):
        insert += " ON DUPLICATE KEY UPDATE digest = digest"
    else:  # SQLite and PostgreSQL: another transaction stored it a moment ago
        insert += " ON CONFLICT (digest) DO NOTHING"
    # Large values go in smaller groups so one statement stays well under
    # max_allowed_packet on MySQL.
    batch: list[tuple[bytes, int, bytes]] = []
    size = 0
    for key, data in values.items():
        batch.append((key, len(data), data))
        size += len(data)
        if size > 4 * 1024 * 1024 or len(batch) >= INSERT_CHUNK:
            connection.exec_driver_sql(insert, batch)
            batch, size = [], 0
    if batch:
        connection.exec_driver_sql(insert, batch)
    return len(values)


def load_blobs(session: Session, digests: Iterable[str]) -> dict[str, bytes]:
    wanted = list(set(digests))
    out: dict[str, bytes] = {}
    for chunk in chunks(wanted):
        for digest, data in session.execute(
            select(Blob.digest, Blob.data).where(Blob.digest.in_(chunk))
        ):
            out[digest] = bytes(data)
    return out
