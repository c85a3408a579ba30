"""SQLAlchemy 2 models. The schema is created and changed only by Alembic.

Storage grows with change, not with time: ``node_states`` holds one row per
(tree, path, content) with the snapshot range it was valid in
(``valid_from`` inclusive, ``valid_to`` exclusive, NULL while current). A value
of up to :data:`INLINE_MAX` bytes (nearly every configuration value) is held in
the row itself (``data``); a larger one lives once in ``blobs``, keyed by its
SHA-256, and the row's ``data`` is NULL. Desired state is stored the same way
against desired-state revisions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from zkdrift.model import PATH_KEY_BYTES
from zkdrift.policy import TreePolicy
from zkdrift.scope import Scope, scope_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# A znode value can be up to jute.maxbuffer (1 MiB by default, configurable):
# MySQL's BLOB stops at 64 KiB.
Bytes = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
# Paths are unbounded; utf8mb4 Text. Lookups go through a digest column.
PathText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


class BinaryDigest(TypeDecorator[str]):
    """A digest stored as its bytes (half the size of hex text, in rows and in
    every index), handled in Python as the lowercase hex string
    :func:`zkdrift.model.digest` and :func:`zkdrift.model.path_digest` return,
    so callers treat digests as opaque strings whatever the column holds."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(self.length))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return bytes.fromhex(value)

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> str | None:
        return None if value is None else value.hex()


Digest = BinaryDigest(32)  # SHA-256 of a value (or a keyed digest of a secret one)
PathDigest = BinaryDigest(PATH_KEY_BYTES)  # a prefix of a path's SHA-1 (model.path_key)
# The first 8 bytes of a BLAKE2b-128 of everything recorded for a node. It is only
# ever compared with the state of the same path in the snapshot before: a wrong
# "unchanged" needs a 64-bit collision between a path's old and new state (about
# 5e-20 per changed node), not a birthday collision among all the paths.
StateDigest = BinaryDigest(8)
# Values up to this many bytes are stored in the node (or configuration) row; larger
# ones once in ``blobs``. Rows stay within a SQLite page; nearly every znode value
# is far smaller.
INLINE_MAX = 1024


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tree(Base):
    """A registered ZooKeeper subtree that zkdrift manages."""

    __tablename__ = "trees"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    hosts: Mapped[str] = mapped_column(String(2000))
    root: Mapped[str] = mapped_column(PathText)
    excludes: Mapped[list[str]] = mapped_column(JSON, default=list)
    includes: Mapped[list[str]] = mapped_column(JSON, default=list)
    capture_acl: Mapped[bool] = mapped_column(Boolean, default=False)
    # Name of an environment variable holding 'scheme:credential'; the
    # credential itself is never stored.
    auth_env: Mapped[str | None] = mapped_column(String(200), default=None)
    # Policy and schedule: reconcile mode, cron/interval, protected globs, ...
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The desired-state revision live was last made equal to (apply or adopt);
    # the base of three-way drift classification.
    applied_revision_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def policy(self) -> TreePolicy:
        """The tree's policy, validated (:class:`~zkdrift.policy.InvalidPolicyError` if not)."""
        return TreePolicy.from_options(self.name, self.options)

    @policy.setter
    def policy(self, value: TreePolicy) -> None:
        self.options = value.to_options()

    def scope(self, lock_root: str | None = None) -> Scope:
        """What zkdrift manages of this tree (with its lock root left out)."""
        return scope_of(self.root, self.excludes or (), self.includes or (), lock_root)


class Blob(Base):
    """A znode value larger than :data:`INLINE_MAX`, stored once however many nodes
    and snapshots hold it (and every value a plan's operations carry)."""

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(Digest, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(Bytes)


class Snapshot(Base):
    """One capture of a tree; complete or absent (written in one transaction)."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_tree_id_id", "tree_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime)
    node_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    modified: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_count: Mapped[int] = mapped_column(Integer, default=0)
    max_mzxid: Mapped[int] = mapped_column(BigInteger, default=0)
    # The server's last zxid when the read started and ended (None: not read live),
    # and whether nodes changed within that span.
    zxid_start: Mapped[int | None] = mapped_column(BigInteger, default=None)
    zxid_end: Mapped[int | None] = mapped_column(BigInteger, default=None)
    fuzzy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    with_acl: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(50), default="cli")
    read_seconds: Mapped[float] = mapped_column(default=0.0)
    write_seconds: Mapped[float] = mapped_column(default=0.0)


class NodeState(Base):
    """One content of one path, valid for a range of snapshots."""

    __tablename__ = "node_states"
    __table_args__ = (
        # One index: one path's rows (its open row at valid_to NULL, its history in
        # the rest). Every index entry costs bytes per node per content. The state
        # digest rides in it: a capture compares a million open rows without
        # reading the table. There is no index by snapshot (valid_from): a snapshot
        # holds nearly every row of its tree, so rebuilding one reads the tree's
        # rows either way, and it saved no query a scan of the tree's rows would
        # not do as fast, against 11 bytes per row.
        Index("ix_node_states_path", "tree_id", "path_digest", "valid_to", "state_digest"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    path_digest: Mapped[str] = mapped_column(PathDigest)
    path: Mapped[str] = mapped_column(PathText)
    # Digest of everything recorded for the node; equal digests, equal rows.
    state_digest: Mapped[str] = mapped_column(StateDigest)
    # The value's digest, compared with desired and earlier values; the value itself
    # in ``data`` (up to INLINE_MAX bytes), or else in ``blobs`` under this digest.
    data_digest: Mapped[str] = mapped_column(Digest)
    data: Mapped[bytes | None] = mapped_column(Bytes, default=None)
    data_length: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    cversion: Mapped[int] = mapped_column(Integer)
    aversion: Mapped[int] = mapped_column(Integer)
    # NULL where the rest of the stat implies the value, which takes no bytes instead
    # of six: czxid equal to mzxid and ctime to mtime (a node never set since it was
    # created, most of a configuration tree), pzxid equal to czxid (a node whose
    # children never changed: every leaf). Read them with the stat they imply
    # (:func:`zkdrift.store.snapshots.load_snapshot` does).
    czxid: Mapped[int | None] = mapped_column(BigInteger)
    mzxid: Mapped[int] = mapped_column(BigInteger)
    pzxid: Mapped[int | None] = mapped_column(BigInteger)
    ctime: Mapped[int | None] = mapped_column(BigInteger)
    mtime: Mapped[int] = mapped_column(BigInteger)
    ephemeral_owner: Mapped[int] = mapped_column(BigInteger)
    num_children: Mapped[int] = mapped_column(Integer)
    # NULL (not JSON null) when ACLs were not read.
    acl: Mapped[list[list[Any]] | None] = mapped_column(JSON(none_as_null=True), default=None)
    valid_from: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"))
    valid_to: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", ondelete="SET NULL"), default=None
    )


class DesiredRevision(Base):
    """One change to a tree's desired state (the ``Configurations`` table's history)."""

    __tablename__ = "desired_revisions"
    __table_args__ = (UniqueConstraint("tree_id", "number", name="uq_desired_revisions_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    modified: Mapped[int] = mapped_column(Integer, default=0)
    # Where a revision synced from Git came from: the commit, its author and
    # message, and the repository URL with any credential masked.
    source_commit: Mapped[str | None] = mapped_column(String(64), default=None)
    source_author: Mapped[str | None] = mapped_column(String(500), default=None)
    source_message: Mapped[str | None] = mapped_column(Text, default=None)
    source_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # A hand-made change to a tree whose desired state comes from Git (--override).
    override: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Configuration(Base):
    """Desired key/value pairs per tree, valid for a range of revisions.

    The original design's ``Configurations`` table, made temporal: the rows
    with ``valid_to IS NULL`` are the current desired state.
    """

    __tablename__ = "configurations"
    __table_args__ = (
        Index("ix_configurations_current", "tree_id", "valid_to", "path_digest"),
        Index("ix_configurations_from", "tree_id", "valid_from"),
        Index("ix_configurations_path", "tree_id", "path_digest", "valid_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    path_digest: Mapped[str] = mapped_column(PathDigest)
    path: Mapped[str] = mapped_column(PathText)
    # As in node_states: the value in ``data`` up to INLINE_MAX bytes, else in blobs.
    data_digest: Mapped[str] = mapped_column(Digest)
    data: Mapped[bytes | None] = mapped_column(Bytes, default=None)
    data_length: Mapped[int] = mapped_column(Integer)
    acl: Mapped[list[list[Any]] | None] = mapped_column(JSON, default=None)
    valid_from: Mapped[int] = mapped_column(ForeignKey("desired_revisions.id", ondelete="CASCADE"))
    valid_to: Mapped[int | None] = mapped_column(
        ForeignKey("desired_revisions.id", ondelete="SET NULL"), default=None
    )


class DriftRun(Base):
    """One drift check: live (or a snapshot) compared with desired (or a snapshot)."""

    __tablename__ = "drift_runs"
    __table_args__ = (Index("ix_drift_runs_tree_id_started_at", "tree_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", ondelete="SET NULL"), default=None
    )
    against: Mapped[str] = mapped_column(String(50))  # desired | snapshot
    desired_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("desired_revisions.id", ondelete="SET NULL"), default=None
    )
    base_snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", ondelete="SET NULL"), default=None
    )
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    total: Mapped[int] = mapped_column(Integer, default=0)
    drift: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    conflict: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(50), default="cli")


class DriftItem(Base):
    """One differing path in a drift run. Digests and sizes only, never values."""

    __tablename__ = "drift_items"
    __table_args__ = (Index("ix_drift_items_run_id_path_digest", "run_id", "path_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("drift_runs.id", ondelete="CASCADE"))
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"), index=True)
    path_digest: Mapped[str] = mapped_column(PathDigest)
    path: Mapped[str] = mapped_column(PathText)
    kind: Mapped[str] = mapped_column(String(20))
    classification: Mapped[str] = mapped_column(String(20))
    desired_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    live_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    base_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    desired_size: Mapped[int | None] = mapped_column(Integer, default=None)
    live_size: Mapped[int | None] = mapped_column(Integer, default=None)


class PlanRecord(Base):
    """A persisted plan: the operations that make live equal desired."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"), index=True)
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", ondelete="SET NULL"), default=None
    )
    desired_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("desired_revisions.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    prune: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    op_count: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)


class PlanOp(Base):
    """One operation of a plan, with the znode version it was planned against."""

    __tablename__ = "plan_ops"
    __table_args__ = (UniqueConstraint("plan_id", "seq", name="uq_plan_ops_plan_id_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(PathText)
    expected_version: Mapped[int | None] = mapped_column(Integer, default=None)
    data_digest: Mapped[str | None] = mapped_column(
        Digest, ForeignKey("blobs.digest"), default=None
    )
    acl: Mapped[list[list[Any]] | None] = mapped_column(JSON, default=None)
    before_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    after_digest: Mapped[str | None] = mapped_column(Digest, default=None)


class Apply(Base):
    """The audit record of one apply (or adopt): who, why, what, and how it ended."""

    __tablename__ = "applies"
    __table_args__ = (Index("ix_applies_tree_id_started_at", "tree_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plans.id", ondelete="SET NULL"), default=None
    )
    desired_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("desired_revisions.id", ondelete="SET NULL"), default=None
    )
    direction: Mapped[str] = mapped_column(String(20), default="push")  # push | adopt
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    lock_identifier: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    ops_total: Mapped[int] = mapped_column(Integer, default=0)
    ops_applied: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplyOp(Base):
    """One operation as applied, with before/after digests and its outcome."""

    __tablename__ = "apply_ops"
    __table_args__ = (Index("ix_apply_ops_apply_id_seq", "apply_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    apply_id: Mapped[int] = mapped_column(ForeignKey("applies.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(PathText)
    expected_version: Mapped[int | None] = mapped_column(Integer, default=None)
    before_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    after_digest: Mapped[str | None] = mapped_column(Digest, default=None)
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, default=None)


class WatchEvent(Base):
    """One change a watcher saw, as it happened: the events between snapshots.

    ``kind`` is created, changed or deleted for a notification, ``resync`` for a
    full read the watcher did (its reason in ``detail``). ``mzxid``/``version``
    are the node's as read right after the notification, on the last
    notification of the path in its batch (earlier ones were superseded before
    they could be read); None for a deleted node. Never values.
    """

    __tablename__ = "watch_events"
    __table_args__ = (
        Index("ix_watch_events_tree_id_seen_at", "tree_id", "seen_at"),
        Index("ix_watch_events_tree_id_path_digest", "tree_id", "path_digest"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tree_id: Mapped[int] = mapped_column(ForeignKey("trees.id", ondelete="CASCADE"))
    path_digest: Mapped[str] = mapped_column(PathDigest)
    path: Mapped[str] = mapped_column(PathText)
    kind: Mapped[str] = mapped_column(String(20))
    mzxid: Mapped[int | None] = mapped_column(BigInteger, default=None)
    version: Mapped[int | None] = mapped_column(Integer, default=None)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(String(500), default=None)


class TreeWatch(Base):
    """Whether a watcher follows a tree now: its mode, its heartbeat, what it last saw."""

    __tablename__ = "tree_watches"

    tree_id: Mapped[int] = mapped_column(
        ForeignKey("trees.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(20))  # watching | polling | stopped
    detail: Mapped[str | None] = mapped_column(String(500), default=None)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_event_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    last_resync_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
