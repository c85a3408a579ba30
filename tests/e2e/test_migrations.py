"""The schema is made only by migrations, and the models match them on every backend."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import inspect

from zkdrift.store.engine import Database, alembic_config
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
