"""digests stored as bytes; one index fewer on node_states

Every digest column (value digests in ``blobs`` and wherever a value is
referred to, path digests, state digests) held lowercase hex text: twice its
size, in each row and again in each index. They now hold the digest's bytes
(VARBINARY on MySQL/MariaDB, BYTEA on PostgreSQL, BLOB on SQLite); existing
rows are converted, hex to bytes. zkdrift still hands digests around as hex
strings; only the stored form changes.

``node_states`` had three indexes. ``ix_node_states_current`` (tree,
valid_to, path digest) and ``ix_node_states_path`` (tree, path digest,
valid_from) become one, ``ix_node_states_path`` on (tree, path digest,
valid_to, state digest): a path's open row is its entry at valid_to NULL, its
whole history is the same prefix, and a capture compares state digests from
the index alone. ``ix_node_states_from`` still rebuilds a snapshot.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (column, digest bytes, nullable)
COLUMNS: dict[str, list[tuple[str, int, bool]]] = {
    "blobs": [("digest", 32, False)],
    "node_states": [
        ("path_digest", 20, False),
        ("state_digest", 16, False),
        ("data_digest", 32, False),
    ],
    "configurations": [("path_digest", 20, False), ("data_digest", 32, False)],
    "drift_items": [
        ("path_digest", 20, False),
        ("desired_digest", 32, True),
        ("live_digest", 32, True),
        ("base_digest", 32, True),
    ],
    "plan_ops": [
        ("data_digest", 32, True),
        ("before_digest", 32, True),
        ("after_digest", 32, True),
    ],
    "apply_ops": [("before_digest", 32, True), ("after_digest", 32, True)],
}
# Foreign keys onto blobs.digest: both ends change type together, which MariaDB
# and PostgreSQL allow only without the constraint.
DIGEST_KEYS = ("configurations", "node_states", "plan_ops")


def _drop_keys() -> None:
    for table in DIGEST_KEYS:
        op.drop_constraint(f"fk_{table}_data_digest_blobs", table, type_="foreignkey")


def _create_keys() -> None:
    for table in DIGEST_KEYS:
        op.create_foreign_key(
            f"fk_{table}_data_digest_blobs", table, "blobs", ["data_digest"], ["digest"]
        )


def _sqlite_functions() -> None:
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    raw.create_function(
        "zkdrift_unhex",
        1,
        lambda v: None if v is None else bytes.fromhex(v if isinstance(v, str) else v.decode()),
        deterministic=True,
    )


def _convert(to_binary: bool) -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        # env.py turns foreign keys off for SQLite migrations: tables are rebuilt.
        _sqlite_functions()
        for table, columns in COLUMNS.items():
            with op.batch_alter_table(table, recreate="always") as batch:
                for column, size, nullable in columns:
                    batch.alter_column(
                        column,
                        existing_type=sa.String(2 * size) if to_binary else sa.LargeBinary(),
                        type_=sa.LargeBinary() if to_binary else sa.String(2 * size),
                        existing_nullable=nullable,
                    )
            for column, _size, _nullable in columns:
                expr = f"zkdrift_unhex({column})" if to_binary else f"lower(hex({column}))"
                op.execute(f"UPDATE {table} SET {column} = {expr} WHERE {column} IS NOT NULL")
        return
    _drop_keys()
    for table, columns in COLUMNS.items():
        for column, size, nullable in columns:
            if dialect == "postgresql":
                using = f"decode({column}, 'hex')" if to_binary else f"encode({column}, 'hex')"
                op.alter_column(
                    table,
                    column,
                    existing_type=sa.String(2 * size) if to_binary else sa.LargeBinary(),
                    type_=sa.LargeBinary() if to_binary else sa.String(2 * size),
                    existing_nullable=nullable,
                    postgresql_using=using,
                )
                continue
            # MySQL/MariaDB: hex text as bytes first, then the bytes it spells.
            wide = mysql.VARBINARY(2 * size)
            if to_binary:
                op.alter_column(
                    table,
                    column,
                    existing_type=sa.String(2 * size),
                    type_=wide,
                    existing_nullable=nullable,
                )
                op.execute(f"UPDATE {table} SET {column} = UNHEX({column})")
                op.alter_column(
                    table,
                    column,
                    existing_type=wide,
                    type_=mysql.VARBINARY(size),
                    existing_nullable=nullable,
                )
            else:
                op.alter_column(
                    table,
                    column,
                    existing_type=mysql.VARBINARY(size),
                    type_=wide,
                    existing_nullable=nullable,
                )
                op.execute(f"UPDATE {table} SET {column} = LOWER(HEX({column}))")
                op.alter_column(
                    table,
                    column,
                    existing_type=wide,
                    type_=sa.String(2 * size),
                    existing_nullable=nullable,
                )
    _create_keys()


def upgrade() -> None:
    with op.batch_alter_table("node_states") as batch:
        batch.drop_index("ix_node_states_current")
        batch.drop_index("ix_node_states_path")
    _convert(to_binary=True)
    with op.batch_alter_table("node_states") as batch:
        batch.create_index(
            "ix_node_states_path",
            ["tree_id", "path_digest", "valid_to", "state_digest"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("node_states") as batch:
        batch.drop_index("ix_node_states_path")
    _convert(to_binary=False)
    with op.batch_alter_table("node_states") as batch:
        batch.create_index(
            "ix_node_states_path", ["tree_id", "path_digest", "valid_from"], unique=False
        )
        batch.create_index(
            "ix_node_states_current", ["tree_id", "valid_to", "path_digest"], unique=False
        )
