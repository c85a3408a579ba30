"""The schema is made only by migrations, and the models match them on every backend."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import JSON, MetaData, Table, insert, inspect, select, text

from tests.support.db import MARIADB_ADMIN_URL
from zkdrift.store.engine import Database, alembic_config, make_engine, upgrade
from zkdrift.store.models import Base


def _check(url: str) -> None:
    db = Database(url)
    try:
        command.check(alembic_config(db.engine))
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        db.ensure_schema()
    finally:
        db.dispose()


def test_migrations_build_the_schema_the_models_describe_on_sqlite_and_mariadb(db_url: str) -> None:
    _check(db_url)


def test_migrations_build_the_schema_the_models_describe_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    _check(postgres_url)


def test_alembic_check_fails_when_a_model_changes_without_a_migration(sqlite_url: str) -> None:
    from sqlalchemy import Column, Integer, Table

    db = Database(sqlite_url)
    extra = Table("unmigrated", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(CommandError, match="New upgrade operations detected"):
            command.check(alembic_config(db.engine))
    finally:
        Base.metadata.remove(extra)
        db.dispose()


def test_a_database_behind_head_is_reported_with_the_command_that_fixes_it(
    tmp_path: object,
) -> None:
    from zkdrift.errors import DatabaseError

    url = f"sqlite:///{tmp_path}/empty.db"
    db = Database(url)
    try:
        with pytest.raises(DatabaseError, match="zkdrift db upgrade"):
            db.ensure_schema()
    finally:
        db.dispose()


def test_the_schema_head_constant_names_the_newest_migration() -> None:
    from zkdrift.store.engine import SCHEMA_HEAD, head_revision

    assert head_revision() == SCHEMA_HEAD


def test_the_embedded_sqlite_database_creates_its_schema_on_first_use(tmp_path: object) -> None:
    from pydantic import SecretStr

    from zkdrift.app import App
    from zkdrift.settings import Settings

    app = App(Settings(database_url=SecretStr(f"sqlite:///{tmp_path}/fresh.db")))
    try:
        assert app.db.schema_revision() == head_revision_value()
    finally:
        app.close()


def head_revision_value() -> str | None:
    from zkdrift.store.engine import head_revision

    return head_revision()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if request.param == "postgresql":
        yield str(request.getfixturevalue("postgres_url"))
        return
    admin = make_engine(MARIADB_ADMIN_URL)
    name = f"zkdrift_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def _filled(table: Table, **values: object) -> dict[str, object]:
    """A row of ``table`` with every required column given a plain value."""
    row: dict[str, object] = {}
    for column in table.columns:
        if column.nullable or column.name == "id":
            continue
        python = column.type.python_type
        if column.name in ("excludes", "includes", "options"):
            # JSON, or MariaDB's LONGTEXT checked with json_valid
            row[column.name] = {} if column.name == "options" else []
            if python is str:
                row[column.name] = json.dumps(row[column.name])
            continue
        row[column.name] = {
            int: 0,
            str: "x",
            bool: False,
            float: 0.0,
            dt.datetime: dt.datetime(2026, 1, 1),
        }.get(python, 0)
    row.update(values)
    return row


def test_upgrading_to_binary_digests_converts_every_stored_digest_and_back(
    empty_url: str,
) -> None:
    from zkdrift.model import digest

    value = b"\x00\xff value \xe9"
    value_digest, pd = digest(value), _sha1("/app/k").hex()
    state_digest = "0123456789abcdef0123456789abcdef"
    db = Database(empty_url)
    try:
        upgrade(db.engine, "0004")
        meta = MetaData()
        meta.reflect(db.engine)
        t = meta.tables
        with db.engine.begin() as conn:
            conn.execute(insert(t["blobs"]), [{"digest": value_digest, "size": 11, "data": value}])
            tree_id = conn.execute(
                insert(t["trees"]).values(_filled(t["trees"], name="app", root="/app"))
            ).inserted_primary_key[0]
            sid = conn.execute(
                insert(t["snapshots"]).values(
                    _filled(t["snapshots"], tree_id=tree_id, node_count=1)
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(t["node_states"]).values(
                    _filled(
                        t["node_states"],
                        tree_id=tree_id,
                        path="/app/k",
                        path_digest=pd,
                        state_digest=state_digest,
                        data_digest=value_digest,
                        data_length=len(value),
                        version=3,
                        valid_from=sid,
                        valid_to=None,
                    )
                )
            )
            run_id = conn.execute(
                insert(t["drift_runs"]).values(_filled(t["drift_runs"], tree_id=tree_id))
            ).inserted_primary_key[0]
            conn.execute(
                insert(t["drift_items"]).values(
                    _filled(
                        t["drift_items"],
                        run_id=run_id,
                        tree_id=tree_id,
                        path="/app/k",
                        path_digest=pd,
                        live_digest=value_digest,
                        desired_digest=None,
                    )
                )
            )

        upgrade(db.engine, "0006")
        with db.engine.connect() as session:
            assert session.execute(text("SELECT data FROM blobs")).scalar_one() == value
            stored = session.execute(
                text("SELECT path_digest, state_digest, data_digest FROM node_states")
            ).one()
            assert [bytes(d) for d in stored] == [
                bytes.fromhex(pd),
                bytes.fromhex(state_digest),
                bytes.fromhex(value_digest),
            ]
            item = session.execute(
                text("SELECT live_digest, desired_digest FROM drift_items")
            ).one()
            assert (bytes(item[0]), item[1]) == (bytes.fromhex(value_digest), None)

        command.downgrade(alembic_config(db.engine), "0004")
        with db.engine.connect() as conn:
            assert conn.execute(
                text("SELECT path_digest, state_digest, data_digest FROM node_states")
            ).one() == (pd, state_digest, value_digest)
            assert conn.execute(text("SELECT digest FROM blobs")).one() == (value_digest,)
    finally:
        db.dispose()


def test_upgrading_to_inline_values_moves_small_values_into_rows_and_back(
    empty_url: str,
) -> None:
    from zkdrift.model import Stat, digest, path_key
    from zkdrift.store import desired as desired_store
    from zkdrift.store import snapshots as snapshot_store
    from zkdrift.store.models import INLINE_MAX, DesiredRevision, Snapshot, Tree

    small, large = b"\x00\xff small \xe9\x00", bytes(range(256)) * 8
    assert len(small) <= INLINE_MAX < len(large)
    plan_value = b"planned"
    stat = Stat(version=3, czxid=7, mzxid=9, pzxid=7, ctime=1, mtime=2, data_length=len(small))
    db = Database(empty_url)
    try:
        upgrade(db.engine, "0006")
        meta = MetaData()
        meta.reflect(db.engine)
        t = meta.tables

        def old_state(value: bytes) -> bytes:  # revision 0006's 16-byte state digest
            return _state_0006(digest(value), stat, len(value))

        with db.engine.begin() as conn:
            conn.execute(
                insert(t["blobs"]),
                [
                    {"digest": bytes.fromhex(digest(v)), "size": len(v), "data": v}
                    for v in (small, large, plan_value)
                ],
            )
            tree_id = conn.execute(
                insert(t["trees"]).values(_filled(t["trees"], name="app", root="/app"))
            ).inserted_primary_key[0]
            sid = conn.execute(
                insert(t["snapshots"]).values(
                    _filled(t["snapshots"], tree_id=tree_id, node_count=2)
                )
            ).inserted_primary_key[0]
            rid = conn.execute(
                insert(t["desired_revisions"]).values(
                    _filled(t["desired_revisions"], tree_id=tree_id, number=1, entry_count=2)
                )
            ).inserted_primary_key[0]
            for path, value in (("/app/s", small), ("/app/l", large)):
                conn.execute(
                    insert(t["node_states"]).values(
                        _filled(
                            t["node_states"],
                            tree_id=tree_id,
                            path=path,
                            path_digest=_sha1(path),
                            state_digest=old_state(value),
                            data_digest=bytes.fromhex(digest(value)),
                            data_length=len(value),
                            version=3,
                            czxid=7,
                            mzxid=9,
                            pzxid=7,
                            ctime=1,
                            mtime=2,
                            # JSON null, as revision 0006 stored an ACL not read
                            acl=None if isinstance(t["node_states"].c.acl.type, JSON) else "null",
                            valid_from=sid,
                            valid_to=None,
                        )
                    )
                )
                conn.execute(
                    insert(t["configurations"]).values(
                        _filled(
                            t["configurations"],
                            tree_id=tree_id,
                            path=path,
                            path_digest=_sha1(path),
                            data_digest=bytes.fromhex(digest(value)),
                            data_length=len(value),
                            valid_from=rid,
                            valid_to=None,
                        )
                    )
                )
            plan_id = conn.execute(
                insert(t["plans"]).values(_filled(t["plans"], tree_id=tree_id, warnings="[]"))
            ).inserted_primary_key[0]
            conn.execute(
                insert(t["plan_ops"]).values(
                    _filled(
                        t["plan_ops"],
                        plan_id=plan_id,
                        path="/app/p",
                        data_digest=bytes.fromhex(digest(plan_value)),
                    )
                )
            )
            run_id = conn.execute(
                insert(t["drift_runs"]).values(_filled(t["drift_runs"], tree_id=tree_id))
            ).inserted_primary_key[0]
            conn.execute(
                insert(t["drift_items"]).values(
                    _filled(
                        t["drift_items"],
                        run_id=run_id,
                        tree_id=tree_id,
                        path="/app/s",
                        path_digest=_sha1("/app/s"),
                        desired_digest=None,
                        live_digest=None,
                        base_digest=None,
                    )
                )
            )
            conn.execute(
                insert(t["watch_events"]).values(
                    _filled(
                        t["watch_events"],
                        tree_id=tree_id,
                        path="/app/l",
                        path_digest=_sha1("/app/l"),
                        mzxid=None,
                        version=None,
                    )
                )
            )

        db.upgrade()
        command.check(alembic_config(db.engine))
        with db.session() as session:
            tree = session.scalars(select(Tree)).one()
            snap = session.scalars(select(Snapshot)).one()
            state = snapshot_store.load_snapshot(session, tree, snap)
            assert {p: n.data for p, n in state.nodes.items()} == {"/app/s": small, "/app/l": large}
            assert state["/app/s"].stat == stat
            revision = session.scalars(select(DesiredRevision)).one()
            desired = desired_store.load_desired(session, tree, revision)
            assert {p: n.data for p, n in desired.nodes.items()} == {
                "/app/s": small,
                "/app/l": large,
            }
            # Only the large value and the plan's stay in blobs.
            blobs = {bytes(d) for d in session.execute(text("SELECT data FROM blobs")).scalars()}
            assert blobs == {large, plan_value}
            rows = session.execute(
                text("SELECT path, data, state_digest, acl IS NULL FROM node_states ORDER BY path")
            ).all()
            assert [(p, None if d is None else bytes(d), bool(n)) for p, d, _s, n in rows] == [
                ("/app/l", None, True),
                ("/app/s", small, True),
            ]
            assert bytes(rows[1][2]) == old_state(small)[:8]
            # Stat columns the rest of the stat implies are NULL: pzxid = czxid here.
            assert session.execute(
                text("SELECT DISTINCT czxid, pzxid, ctime FROM node_states")
            ).all() == [(7, None, 1)]
            # Path digests keep their SHA-1's first 12 bytes: what the store computes.
            for table in PATH_TABLES:
                digests = session.execute(text(f"SELECT path, path_digest FROM {table}")).all()
                assert digests
                assert all(bytes(d) == path_key(p) == _sha1(p)[:12] for p, d in digests)
            # The migrated digest is the one a capture computes: an unchanged node stays.
            assert bytes(rows[1][2]) == bytes.fromhex(
                snapshot_store.state_digest(digest(small), stat, None)
            )

        command.downgrade(alembic_config(db.engine), "0006")
        with db.engine.connect() as conn:
            blobs = {bytes(d) for d in conn.execute(text("SELECT data FROM blobs")).scalars()}
            assert blobs == {small, large, plan_value}
            rows = conn.execute(
                text("SELECT path, state_digest, acl IS NULL FROM node_states ORDER BY path")
            ).all()
            assert [(p, bytes(s), bool(n)) for p, s, n in rows] == [
                ("/app/l", old_state(large), False),
                ("/app/s", old_state(small), False),
            ]
            assert "data" not in {c["name"] for c in inspect(conn).get_columns("node_states")}
            for table in PATH_TABLES:
                digests = conn.execute(text(f"SELECT path, path_digest FROM {table}")).all()
                assert digests
                assert all(bytes(d) == _sha1(p) for p, d in digests)
            assert conn.execute(
                text("SELECT DISTINCT czxid, pzxid, ctime FROM node_states")
            ).all() == [(7, 7, 1)]
    finally:
        db.dispose()


PATH_TABLES = ("node_states", "configurations", "drift_items", "watch_events")


def _sha1(path: str) -> bytes:
    """A path digest as revisions 0005 and 0006 stored it: the whole SHA-1."""
    import hashlib

    return hashlib.sha1(path.encode(), usedforsecurity=False).digest()


def _state_0006(value_digest: str, stat: object, length: int) -> bytes:
    """The state digest revision 0006 stored: BLAKE2b-128 of the value digest and stat."""
    import struct
    from hashlib import blake2b

    s: Any = stat
    h = blake2b(value_digest.encode(), digest_size=16)
    h.update(
        struct.pack(
            ">iiiqqqqqqii",
            s.version,
            s.cversion,
            s.aversion,
            s.czxid,
            s.mzxid,
            s.pzxid,
            s.ctime,
            s.mtime,
            s.ephemeral_owner,
            s.num_children,
            length,
        )
    )
    return h.digest()
