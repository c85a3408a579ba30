"""small values in the row; 12-byte path digests, 8-byte state digests; SQL NULL ACLs

A value of up to 1,024 bytes (nearly every znode value) moves from ``blobs``
into the ``data`` column of the ``node_states`` or ``configurations`` row that
holds it: no blob row and no entry in the blobs' digest index, written at
random, for it. Larger values stay in ``blobs`` under their digest, and the
row's ``data`` is NULL; ``data_digest`` still names every value (drift and
history compare digests). The foreign keys from ``data_digest`` onto
``blobs.digest`` go, since inline values have no blob row; ``plan_ops`` keeps
its own and its values stay in ``blobs``.

``node_states.state_digest`` keeps the first 8 bytes of its BLAKE2b-128: it is
only compared with the same path's state in the snapshot before. Path digests
(``node_states``, ``configurations``, ``drift_items``, ``watch_events``) keep
the first 12 bytes of their SHA-1 (see ``zkdrift.model.PATH_KEY_BYTES``): a
prefix sorts as the whole digest does. An ACL not read is SQL NULL instead of
the JSON text ``null`` in ``node_states`` (``configurations`` keeps its JSON).

Downgrade puts every inline value back in ``blobs`` and recomputes the 16-byte
state digests and the 20-byte path digests from the rows.

``czxid``, ``pzxid`` and ``ctime`` become NULL where the stat implies them
(equal to ``mzxid``, ``czxid`` and ``mtime``): six bytes less each, per row.
``ix_node_states_from`` (tree, valid_from) goes: a snapshot's rows are nearly
all of its tree's, and a scan of them does what it did, without 11 bytes per row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

import json
import struct
from collections.abc import Sequence
from hashlib import blake2b, sha1
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INLINE_MAX = 1024
TABLES = ("node_states", "configurations")
Bytes = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_STAT = struct.Struct(">iiiqqqqqqii")
# Tables holding a path digest, and its bytes before and after.
PATH_TABLES = ("node_states", "configurations", "drift_items", "watch_events")
PATH_KEY_BYTES, SHA1_BYTES = 12, 20
# Stat columns left NULL where the rest of the stat implies them: czxid (= mzxid),
# pzxid (= czxid), ctime (= mtime).
IMPLIED = ("czxid", "pzxid", "ctime")


def _digest_type(size: int) -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.VARBINARY(size), "mysql", "mariadb")


def _prefix(column: str, size: int) -> str:
    """SQL: the first ``size`` bytes of a binary column."""
    if op.get_bind().dialect.name == "postgresql":
        return f"substring({column} from 1 for {size})"
    return f"substr({column}, 1, {size})"


def _path_digest_type(table: str, size: int, new_size: int) -> None:
    """VARBINARY(size) to VARBINARY(new_size) on MySQL/MariaDB; SQLite's BLOB and
    PostgreSQL's bytea have no length to change (and SQLite would copy the table)."""
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            table,
            "path_digest",
            existing_type=mysql.VARBINARY(size),
            type_=mysql.VARBINARY(new_size),
            existing_nullable=False,
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_data_digest_blobs", type_="foreignkey")
            if dialect in ("mysql", "mariadb"):
                # The index MySQL/MariaDB made for the key: a 32-byte random entry per row.
                batch.drop_index(f"fk_{table}_data_digest_blobs")
            batch.add_column(sa.Column("data", Bytes, nullable=True))
        op.execute(
            f"UPDATE {table} SET data = (SELECT b.data FROM blobs b"
            f" WHERE b.digest = {table}.data_digest)"
            f" WHERE data_digest IN (SELECT digest FROM blobs WHERE size <= {INLINE_MAX})"
        )
    op.execute(
        f"DELETE FROM blobs WHERE size <= {INLINE_MAX} AND digest NOT IN"
        " (SELECT data_digest FROM plan_ops WHERE data_digest IS NOT NULL)"
    )
    # MySQL 8 compares a JSON column with 'null' as with the JSON string "null".
    null_acl = {
        "postgresql": "acl::text = 'null'",
        "mysql": "JSON_TYPE(acl) = 'NULL'",
        "mariadb": "JSON_TYPE(acl) = 'NULL'",
    }.get(dialect, "acl = 'null'")
    op.execute(f"UPDATE node_states SET acl = NULL WHERE {null_acl}")
    with op.batch_alter_table("node_states") as batch:
        batch.drop_index("ix_node_states_path")
    path_prefix = _prefix("path_digest", PATH_KEY_BYTES)
    op.execute(
        f"UPDATE node_states SET state_digest = {_prefix('state_digest', 8)},"
        f" path_digest = {path_prefix}"
    )
    for table in PATH_TABLES:
        if table != "node_states":
            op.execute(f"UPDATE {table} SET path_digest = {path_prefix}")
        _path_digest_type(table, SHA1_BYTES, PATH_KEY_BYTES)
    with op.batch_alter_table("node_states") as batch:
        batch.alter_column(
            "state_digest",
            existing_type=_digest_type(16),
            type_=_digest_type(8),
            existing_nullable=False,
        )
        for column in IMPLIED:
            batch.alter_column(column, existing_type=sa.BigInteger(), nullable=True)
        batch.create_index(
            "ix_node_states_path",
            ["tree_id", "path_digest", "valid_to", "state_digest"],
            unique=False,
        )
        # After the path index is back: MySQL/MariaDB's key on tree_id needs an index.
        batch.drop_index("ix_node_states_from")
    # pzxid first: MySQL/MariaDB assign left to right, and it compares with czxid.
    op.execute(
        "UPDATE node_states SET"
        " pzxid = CASE WHEN pzxid = czxid THEN NULL ELSE pzxid END,"
        " ctime = CASE WHEN ctime = mtime THEN NULL ELSE ctime END,"
        " czxid = CASE WHEN czxid = mzxid THEN NULL ELSE czxid END"
    )


def _state_key(row: Sequence[Any]) -> bytes:
    """The 16-byte state digest revision 0006 computed for a row."""
    (
        _id,
        data_digest,
        version,
        cversion,
        aversion,
        czxid,
        mzxid,
        pzxid,
        ctime,
        mtime,
        owner,
        children,
        length,
        acl,
    ) = row
    h = blake2b(bytes(data_digest).hex().encode(), digest_size=16)
    h.update(
        _STAT.pack(
            version, cversion, aversion, czxid, mzxid, pzxid, ctime, mtime, owner, children, length
        )
    )
    if isinstance(acl, str | bytes):
        acl = json.loads(acl)
    if acl is not None:
        h.update(repr([[int(p), str(s), str(i)] for p, s, i in acl]).encode())
    return h.digest()


def downgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    # Whether czxid is assigned first (MySQL/MariaDB) or not, pzxid gets the original.
    op.execute(
        "UPDATE node_states SET czxid = COALESCE(czxid, mzxid),"
        " pzxid = COALESCE(pzxid, czxid, mzxid), ctime = COALESCE(ctime, mtime)"
    )
    with op.batch_alter_table("node_states") as batch:
        # First: MySQL/MariaDB's key on tree_id needs an index while the path index is gone.
        batch.create_index("ix_node_states_from", ["tree_id", "valid_from"], unique=False)
        for column in IMPLIED:
            batch.alter_column(column, existing_type=sa.BigInteger(), nullable=False)
    for table in TABLES:
        ignore = {"mysql": "INSERT IGNORE", "mariadb": "INSERT IGNORE"}.get(dialect, "INSERT")
        conflict = "" if dialect in ("mysql", "mariadb") else " ON CONFLICT (digest) DO NOTHING"
        # A value held by many rows goes in once: the smallest id of each digest.
        op.execute(
            f"{ignore} INTO blobs (digest, size, data)"
            f" SELECT t.data_digest, length(t.data), t.data FROM {table} t"
            f" WHERE t.id IN (SELECT min(id) FROM {table} WHERE data IS NOT NULL"
            " GROUP BY data_digest)" + conflict
        )
    op.execute("UPDATE node_states SET acl = 'null' WHERE acl IS NULL")
    with op.batch_alter_table("node_states") as batch:
        batch.drop_index("ix_node_states_path")
        batch.alter_column(
            "state_digest",
            existing_type=_digest_type(8),
            type_=_digest_type(16),
            existing_nullable=False,
        )
    select = sa.text(
        "SELECT id, data_digest, version, cversion, aversion, czxid, mzxid, pzxid, ctime,"
        " mtime, ephemeral_owner, num_children, data_length, acl FROM node_states"
        " WHERE id > :last ORDER BY id LIMIT 2000"
    )
    update = sa.text("UPDATE node_states SET state_digest = :sd WHERE id = :id")
    last = 0
    while rows := bind.execute(select, {"last": last}).all():
        bind.execute(update, [{"sd": _state_key(r), "id": r[0]} for r in rows])
        last = int(rows[-1][0])
    for table in PATH_TABLES:
        _path_digest_type(table, PATH_KEY_BYTES, SHA1_BYTES)
        # The whole SHA-1 again, from the path text, in batches.
        select = sa.text(f"SELECT id, path FROM {table} WHERE id > :last ORDER BY id LIMIT 2000")
        update = sa.text(f"UPDATE {table} SET path_digest = :pd WHERE id = :id")
        last = 0
        while rows := bind.execute(select, {"last": last}).all():
            bind.execute(
                update,
                [
                    {"pd": sha1(path.encode("utf-8"), usedforsecurity=False).digest(), "id": i}
                    for i, path in rows
                ],
            )
            last = int(rows[-1][0])
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("data")
            batch.create_foreign_key(
                f"fk_{table}_data_digest_blobs", "blobs", ["data_digest"], ["digest"]
            )
    with op.batch_alter_table("node_states") as batch:
        batch.create_index(
            "ix_node_states_path",
            ["tree_id", "path_digest", "valid_to", "state_digest"],
            unique=False,
        )
