"""A recorded tree's comparison keys as arrays: the fast way to compare two trees.

Streaming two trees of a million nodes through the row-by-row merge of
:func:`zkdrift.diff.differing` costs seconds of Python per million rows: a row
object each, a path each, a comparison each. When the comparison needs no
path (no scope rule leaves a persistent node out, no ACL is compared), a
tree's keys on SQLite come out of one aggregate row instead: its path
digests and its value digests, as two blobs (and the digests of its ephemeral
nodes, which are few). numpy sorts them by path digest and matches the two trees by
binary search; only the differing paths are looked up afterwards.

16 bytes of a SHA-256 tell two values apart as surely as the 12 bytes of a
path digest tell two paths apart (see :data:`~zkdrift.model.PATH_KEY_BYTES`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from zkdrift.model import PATH_KEY_BYTES, path_key
from zkdrift.store.bulk import by_digest, not_indexed, scan_beats_index
from zkdrift.store.models import Configuration, NodeState

_TABLES: dict[str, Any] = {"snapshot": NodeState.__table__, "desired": Configuration.__table__}


@dataclass(frozen=True)
class KeyArrays:
    """One tree's keys sorted by path digest: each digest as its first 8 bytes and
    its last 4, each value digest's first 16 bytes as two integers, and which nodes
    are ephemeral."""

    high: Any
    low: Any
    value_high: Any
    value_low: Any
    ephemeral: Any

    def __len__(self) -> int:
        return len(self.high)

    def kept(self, keep_ephemeral: bool) -> KeyArrays:
        """Without the ephemeral nodes, unless they are kept."""
        if keep_ephemeral or not self.ephemeral.any():
            return self
        persistent = ~self.ephemeral
        return KeyArrays(
            self.high[persistent],
            self.low[persistent],
            self.value_high[persistent],
            self.value_low[persistent],
            self.ephemeral[persistent],
        )

    def find(self, path: str) -> int:
        """The position of ``path``'s key, or -1."""
        return self.find_key(path_key(path))

    def find_key(self, key: bytes) -> int:
        """The position of a path digest, or -1."""
        import numpy as np

        high = np.frombuffer(key[:8], dtype=">u8")[0]
        low = np.frombuffer(key[8:], dtype=">u4")[0]
        at = int(np.searchsorted(self.high, high))
        if at < len(self.high) and self.high[at] == high and self.low[at] == low:
            return at
        return -1

    def digests(self, positions: Any) -> list[bytes]:
        """The path digests at ``positions``."""
        high = self.high[positions].astype(">u8").tobytes()
        low = self.low[positions].astype(">u4").tobytes()
        return [high[8 * i : 8 * i + 8] + low[4 * i : 4 * i + 4] for i in range(len(positions))]


def no_keys() -> KeyArrays:
    """The keys of a tree with no nodes."""
    import numpy as np

    empty = np.zeros(0, dtype=np.uint64)
    return KeyArrays(empty, empty.astype(np.uint32), empty, empty, empty.astype(bool))


def key_arrays(session: Session, kind: str, tree_id: int, at: int) -> KeyArrays | None:
    """The keys of the tree as it was at snapshot or revision ``at`` (``kind``
    "snapshot" or "desired"); None when the store is not SQLite, or a digest is
    not of the usual size, or two path digests share their first 8 bytes (the
    caller then compares row by row)."""
    import numpy as np

    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return None
    table = _TABLES[kind]
    # Read in table order and sorted here, when the tree is much of the table.
    hint = " NOT INDEXED" if scan_beats_index(session, table, tree_id) else ""
    where = (
        f" FROM {table.name}{hint} WHERE tree_id = ? AND valid_from <= ?"
        " AND (valid_to IS NULL OR valid_to > ?)"
    )
    params = (tree_id, at, at)
    paths, values, count, shortest, longest = _row(
        connection,
        "SELECT CAST(group_concat(path_digest, '') AS BLOB),"
        " CAST(group_concat(data_digest, '') AS BLOB), count(*),"
        f" min(length(path_digest)), max(length(path_digest)){where}",
        params,
    )
    if not count:
        return no_keys()
    if (shortest, longest) != (PATH_KEY_BYTES, PATH_KEY_BYTES) or len(values) != 32 * count:
        return None
    rows = np.frombuffer(bytes(paths), dtype=np.uint8).reshape(count, PATH_KEY_BYTES)
    high = np.ascontiguousarray(rows[:, :8]).view(">u8").ravel().astype(np.uint64)
    low = np.ascontiguousarray(rows[:, 8:]).view(">u4").ravel().astype(np.uint32)
    del rows, paths
    value = np.frombuffer(bytes(values), dtype=">u8").reshape(count, 4)[:, :2]
    del values
    order = np.argsort(high, kind="stable")
    high = high[order]
    if count > 1 and not bool((high[1:] != high[:-1]).all()):
        return None
    keys = KeyArrays(
        high,
        low[order],
        value[order, 0].astype(np.uint64),
        value[order, 1].astype(np.uint64),
        np.zeros(count, dtype=bool),
    )
    if kind == "snapshot":
        # Ephemeral nodes are few: their digests, looked up among the others.
        (ephemeral,) = _row(
            connection,
            f"SELECT CAST(group_concat(path_digest, '') AS BLOB){where} AND ephemeral_owner != 0",
            params,
        )
        for i in range(0, len(ephemeral or b""), PATH_KEY_BYTES):
            at_key = keys.find_key(bytes(ephemeral[i : i + PATH_KEY_BYTES]))
            if at_key < 0:
                return None
            keys.ephemeral[at_key] = True
    return keys


def _row(connection: Any, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """The one row of an aggregate query, straight from the driver."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        row: tuple[Any, ...] = cursor.fetchone()
        return row
    finally:
        cursor.close()


@dataclass(frozen=True)
class Matched:
    """Where two trees' keys differ: positions in the left keys of paths only the left
    has, and in the right keys of paths only the right has and of paths whose values
    differ."""

    left_only: Any
    right_only: Any
    changed: Any


def match(left: KeyArrays, right: KeyArrays) -> Matched:
    import numpy as np

    if not len(left) or not len(right):
        every = np.arange(len(right))
        return Matched(np.arange(len(left)), every, every[:0])
    at = np.minimum(np.searchsorted(left.high, right.high), len(left) - 1)
    hit = (left.high[at] == right.high) & (left.low[at] == right.low)
    seen = np.zeros(len(left), dtype=bool)
    seen[at[hit]] = True
    differs = (left.value_high[at] != right.value_high) | (left.value_low[at] != right.value_low)
    return Matched(np.flatnonzero(~seen), np.flatnonzero(~hit), np.flatnonzero(hit & differs))


def paths_of(
    session: Session, kind: str, tree_id: int, at: int, digests: Iterable[bytes]
) -> list[str]:
    """The paths of the tree at ``at`` with these path digests."""
    table = _TABLES[kind]
    query = select(table.c.path).where(
        table.c.tree_id == tree_id,
        not_indexed(table.c.valid_from) <= at,
        or_(table.c.valid_to.is_(None), table.c.valid_to > at),
    )
    rows = by_digest(session, query, table.c.path_digest, [d.hex() for d in digests])
    return [path for (path,) in rows]
