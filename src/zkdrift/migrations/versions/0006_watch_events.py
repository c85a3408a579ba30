"""watchers: the changes they see as they happen, and whether a tree is watched

``watch_events`` holds one row per change a watcher saw (path, kind, the
node's mzxid and version, when) and one per full read it did to
resynchronise; ``tree_watches`` one row per watched tree: the watcher's
mode, heartbeat, last event and last resync.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PathText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# A path's SHA-1 as its 20 bytes, as migration 0005 stores every digest.
PathDigest = sa.LargeBinary().with_variant(mysql.VARBINARY(20), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "watch_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tree_id", BigId, nullable=False),
        sa.Column("path_digest", PathDigest, nullable=False),
        sa.Column("path", PathText, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("mzxid", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["trees.id"],
            name=op.f("fk_watch_events_tree_id_trees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_events")),
    )
    op.create_index(
        "ix_watch_events_tree_id_seen_at", "watch_events", ["tree_id", "seen_at"], unique=False
    )
    op.create_index(
        "ix_watch_events_tree_id_path_digest",
        "watch_events",
        ["tree_id", "path_digest"],
        unique=False,
    )
    op.create_table(
        "tree_watches",
        sa.Column("tree_id", BigId, nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(), nullable=True),
        sa.Column("last_resync_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["trees.id"],
            name=op.f("fk_tree_watches_tree_id_trees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tree_id", name=op.f("pk_tree_watches")),
    )


def downgrade() -> None:
    # The indexes go with their tables (MySQL refuses to drop one a foreign key uses).
    op.drop_table("tree_watches")
    op.drop_table("watch_events")
