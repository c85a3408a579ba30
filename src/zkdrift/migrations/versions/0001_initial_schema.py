"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 10:20:00.575901
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "data",
            sa.LargeBinary()
            .with_variant(mysql.LONGBLOB(), "mariadb")
            .with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blobs")),
    )
    op.create_table(
        "trees",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hosts", sa.String(length=2000), nullable=False),
        sa.Column(
            "root",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("excludes", sa.JSON(), nullable=False),
        sa.Column("includes", sa.JSON(), nullable=False),
        sa.Column("capture_acl", sa.Boolean(), nullable=False),
        sa.Column("auth_env", sa.String(length=200), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("applied_revision_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trees")),
        sa.UniqueConstraint("name", name=op.f("uq_trees_name")),
    )
    op.create_table(
        "desired_revisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("modified", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["trees.id"],
            name=op.f("fk_desired_revisions_tree_id_trees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desired_revisions")),
        sa.UniqueConstraint("tree_id", "number", name="uq_desired_revisions_number"),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("modified", sa.Integer(), nullable=False),
        sa.Column("ephemeral_count", sa.Integer(), nullable=False),
        sa.Column("max_mzxid", sa.BigInteger(), nullable=False),
        sa.Column("with_acl", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("read_seconds", sa.Double(), nullable=False),
        sa.Column("write_seconds", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_snapshots_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_snapshots_tree_id_id", ["tree_id", "id"], unique=False)

    op.create_table(
        "configurations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("path_digest", sa.String(length=40), nullable=False),
        sa.Column(
            "path",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("data_digest", sa.String(length=64), nullable=False),
        sa.Column("data_length", sa.Integer(), nullable=False),
        sa.Column("acl", sa.JSON(), nullable=True),
        sa.Column(
            "valid_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("valid_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_digest"], ["blobs.digest"], name=op.f("fk_configurations_data_digest_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"],
            ["trees.id"],
            name=op.f("fk_configurations_tree_id_trees"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["valid_from"],
            ["desired_revisions.id"],
            name=op.f("fk_configurations_valid_from_desired_revisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["valid_to"],
            ["desired_revisions.id"],
            name=op.f("fk_configurations_valid_to_desired_revisions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configurations")),
    )
    with op.batch_alter_table("configurations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_configurations_current", ["tree_id", "valid_to", "path_digest"], unique=False
        )
        batch_op.create_index("ix_configurations_from", ["tree_id", "valid_from"], unique=False)
        batch_op.create_index(
            "ix_configurations_path", ["tree_id", "path_digest", "valid_from"], unique=False
        )

    op.create_table(
        "drift_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("against", sa.String(length=50), nullable=False),
        sa.Column(
            "desired_revision_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "base_snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("drift", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("conflict", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_drift_runs_base_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["desired_revision_id"],
            ["desired_revisions.id"],
            name=op.f("fk_drift_runs_desired_revision_id_desired_revisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_drift_runs_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_drift_runs_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_runs")),
    )
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_runs_tree_id_started_at", ["tree_id", "started_at"], unique=False
        )

    op.create_table(
        "node_states",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("path_digest", sa.String(length=40), nullable=False),
        sa.Column(
            "path",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("state_digest", sa.String(length=32), nullable=False),
        sa.Column("data_digest", sa.String(length=64), nullable=False),
        sa.Column("data_length", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("cversion", sa.Integer(), nullable=False),
        sa.Column("aversion", sa.Integer(), nullable=False),
        sa.Column("czxid", sa.BigInteger(), nullable=False),
        sa.Column("mzxid", sa.BigInteger(), nullable=False),
        sa.Column("pzxid", sa.BigInteger(), nullable=False),
        sa.Column("ctime", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=False),
        sa.Column("ephemeral_owner", sa.BigInteger(), nullable=False),
        sa.Column("num_children", sa.Integer(), nullable=False),
        sa.Column("acl", sa.JSON(), nullable=True),
        sa.Column(
            "valid_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("valid_to", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_digest"], ["blobs.digest"], name=op.f("fk_node_states_data_digest_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_node_states_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["valid_from"],
            ["snapshots.id"],
            name=op.f("fk_node_states_valid_from_snapshots"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["valid_to"],
            ["snapshots.id"],
            name=op.f("fk_node_states_valid_to_snapshots"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_states")),
    )
    with op.batch_alter_table("node_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_node_states_current", ["tree_id", "valid_to", "path_digest"], unique=False
        )
        batch_op.create_index("ix_node_states_from", ["tree_id", "valid_from"], unique=False)
        batch_op.create_index(
            "ix_node_states_path", ["tree_id", "path_digest", "valid_from"], unique=False
        )

    op.create_table(
        "plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "desired_revision_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("prune", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("op_count", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["desired_revision_id"],
            ["desired_revisions.id"],
            name=op.f("fk_plans_desired_revision_id_desired_revisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_plans_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_plans_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_tree_id"), ["tree_id"], unique=False)

    op.create_table(
        "applies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "desired_revision_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("lock_identifier", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ops_total", sa.Integer(), nullable=False),
        sa.Column("ops_applied", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["desired_revision_id"],
            ["desired_revisions.id"],
            name=op.f("fk_applies_desired_revision_id_desired_revisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_applies_plan_id_plans"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_applies_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applies")),
    )
    with op.batch_alter_table("applies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_applies_tree_id_started_at", ["tree_id", "started_at"], unique=False
        )

    op.create_table(
        "drift_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("path_digest", sa.String(length=40), nullable=False),
        sa.Column(
            "path",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("classification", sa.String(length=20), nullable=False),
        sa.Column("desired_digest", sa.String(length=64), nullable=True),
        sa.Column("live_digest", sa.String(length=64), nullable=True),
        sa.Column("base_digest", sa.String(length=64), nullable=True),
        sa.Column("desired_size", sa.Integer(), nullable=True),
        sa.Column("live_size", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["drift_runs.id"],
            name=op.f("fk_drift_items_run_id_drift_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["trees.id"], name=op.f("fk_drift_items_tree_id_trees"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_items")),
    )
    with op.batch_alter_table("drift_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_items_run_id_path_digest", ["run_id", "path_digest"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_drift_items_tree_id"), ["tree_id"], unique=False)

    op.create_table(
        "plan_ops",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "path",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("expected_version", sa.Integer(), nullable=True),
        sa.Column("data_digest", sa.String(length=64), nullable=True),
        sa.Column("acl", sa.JSON(), nullable=True),
        sa.Column("before_digest", sa.String(length=64), nullable=True),
        sa.Column("after_digest", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_digest"], ["blobs.digest"], name=op.f("fk_plan_ops_data_digest_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_plan_ops_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_ops")),
        sa.UniqueConstraint("plan_id", "seq", name="uq_plan_ops_plan_id_seq"),
    )
    op.create_table(
        "apply_ops",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("apply_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column(
            "path",
            sa.Text()
            .with_variant(mysql.MEDIUMTEXT(), "mariadb")
            .with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("expected_version", sa.Integer(), nullable=True),
        sa.Column("before_digest", sa.String(length=64), nullable=True),
        sa.Column("after_digest", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["apply_id"],
            ["applies.id"],
            name=op.f("fk_apply_ops_apply_id_applies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apply_ops")),
    )
    with op.batch_alter_table("apply_ops", schema=None) as batch_op:
        batch_op.create_index("ix_apply_ops_apply_id_seq", ["apply_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("apply_ops", schema=None) as batch_op:
        batch_op.drop_index("ix_apply_ops_apply_id_seq")

    op.drop_table("apply_ops")
    op.drop_table("plan_ops")
    with op.batch_alter_table("drift_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drift_items_tree_id"))
        batch_op.drop_index("ix_drift_items_run_id_path_digest")

    op.drop_table("drift_items")
    with op.batch_alter_table("applies", schema=None) as batch_op:
        batch_op.drop_index("ix_applies_tree_id_started_at")

    op.drop_table("applies")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_tree_id"))

    op.drop_table("plans")
    with op.batch_alter_table("node_states", schema=None) as batch_op:
        batch_op.drop_index("ix_node_states_path")
        batch_op.drop_index("ix_node_states_from")
        batch_op.drop_index("ix_node_states_current")

    op.drop_table("node_states")
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_runs_tree_id_started_at")

    op.drop_table("drift_runs")
    with op.batch_alter_table("configurations", schema=None) as batch_op:
        batch_op.drop_index("ix_configurations_path")
        batch_op.drop_index("ix_configurations_from")
        batch_op.drop_index("ix_configurations_current")

    op.drop_table("configurations")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshots_tree_id_id")

    op.drop_table("snapshots")
    op.drop_table("desired_revisions")
    op.drop_table("trees")
    op.drop_table("blobs")
