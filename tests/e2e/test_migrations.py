"""The schema is made only by migrations, and the models match them on every backend."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import MetaData, Table, insert, inspect, select, text

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
    from zkdrift.model import TreeState, Znode, digest, path_digest
    from zkdrift.store import snapshots as snapshot_store
    from zkdrift.store.models import Snapshot, Tree

    value = b"\x00\xff value \xe9"
    value_digest, pd = digest(value), path_digest("/app/k")
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

        db.upgrade()
        command.check(alembic_config(db.engine))
        with db.session() as session:
            tree = session.scalars(select(Tree)).one()
            snap = session.scalars(select(Snapshot)).one()
            state = snapshot_store.load_snapshot(session, tree, snap)
            assert state == TreeState("/app", {"/app/k": state["/app/k"]})
            assert state["/app/k"] == Znode("/app/k", value, state["/app/k"].stat)
            assert state["/app/k"].version == 3
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
