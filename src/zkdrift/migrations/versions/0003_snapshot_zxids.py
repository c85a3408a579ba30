"""snapshots record the zxids their read spanned, and whether it was fuzzy

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("zxid_start", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("zxid_end", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("fuzzy", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("fuzzy")
        batch.drop_column("zxid_end")
        batch.drop_column("zxid_start")
