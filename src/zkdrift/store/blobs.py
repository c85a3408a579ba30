"""Content-addressed value storage shared by snapshots, desired state and plans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from zkdrift.store.bulk import CHUNK, chunks
from zkdrift.store.models import Blob


def store_blobs(session: Session, values: Mapping[str, bytes]) -> int:
    """Insert the values whose digests are not stored yet; returns how many were new."""
    if not values:
        return 0
    digests = list(values)
    existing: set[str] = set()
    for chunk in chunks(digests):
        existing.update(session.scalars(select(Blob.digest).where(Blob.digest.in_(chunk))))
    missing = [
        {"digest": d, "size": len(values[d]), "data": values[d]}
        for d in digests
        if d not in existing
    ]
    # Large values go in smaller groups so one statement stays well under
    # max_allowed_packet on MySQL.
    batch: list[dict[str, object]] = []
    size = 0
    for row in missing:
        batch.append(row)
        size += int(row["size"])  # type: ignore[call-overload]
        if size > 4 * 1024 * 1024 or len(batch) >= CHUNK:
            session.execute(insert(Blob), batch)
            batch, size = [], 0
    if batch:
        session.execute(insert(Blob), batch)
    return len(missing)


def load_blobs(session: Session, digests: Iterable[str]) -> dict[str, bytes]:
    wanted = list(set(digests))
    out: dict[str, bytes] = {}
    for chunk in chunks(wanted):
        for digest, data in session.execute(
            select(Blob.digest, Blob.data).where(Blob.digest.in_(chunk))
        ):
            out[digest] = bytes(data)
    return out
