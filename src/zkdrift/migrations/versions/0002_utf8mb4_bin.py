"""MySQL/MariaDB tables in utf8mb4 with a binary collation

Tree names and znode paths compare byte for byte: ``/a`` and ``/A`` (and
``café`` in its two Unicode spellings) are different keys, and any Unicode
path fits whatever the server's default character set is. Both MySQL 8 and
MariaDB know ``utf8mb4_bin``. Other databases compare bytes already.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "alembic_version",
    "blobs",
    "trees",
    "snapshots",
    "node_states",
    "desired_revisions",
    "configurations",
    "drift_runs",
    "drift_items",
    "plans",
    "plan_ops",
    "applies",
    "apply_ops",
)


# Foreign keys between text columns (value digests): the two ends must change
# together, which MariaDB does not allow while the constraint exists.
DIGEST_KEYS = ("configurations", "node_states", "plan_ops")


def _convert(collation: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    for table in DIGEST_KEYS:
        op.drop_constraint(f"fk_{table}_data_digest_blobs", table, type_="foreignkey")
    op.execute(f"ALTER DATABASE CHARACTER SET utf8mb4 COLLATE {collation}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}")
    for table in DIGEST_KEYS:
        op.create_foreign_key(
            f"fk_{table}_data_digest_blobs", table, "blobs", ["data_digest"], ["digest"]
        )


def upgrade() -> None:
    _convert("utf8mb4_bin")


def downgrade() -> None:
    _convert("utf8mb4_general_ci")
