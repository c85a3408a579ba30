"""desired-state revisions record where they came from: a Git commit, or an override

A revision synced from a tree's Git source records the commit (SHA), its
author and message, and the repository's URL with any credential masked.
A hand-made change to a Git-sourced tree, allowed with ``--override``, is
flagged as one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("desired_revisions") as batch:
        batch.add_column(sa.Column("source_commit", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("source_author", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("source_message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("source_url", sa.String(length=2000), nullable=True))
        batch.add_column(
            sa.Column("override", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("desired_revisions") as batch:
        batch.drop_column("override")
        batch.drop_column("source_url")
        batch.drop_column("source_message")
        batch.drop_column("source_author")
        batch.drop_column("source_commit")
