"""What every report frame shares: where the data comes from, the tree, the window.

Every frame function takes a SQLAlchemy :class:`~sqlalchemy.Engine`, an ORM
:class:`~sqlalchemy.orm.Session` (its engine is used) or a zkdrift
:class:`~zkdrift.app.App`, a tree name and an optional ``since``/``until``
window (see :mod:`.window`), and returns a DataFrame built by SQL: joins and
aggregation run in the database, pandas only receives the result.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Selectable

from zkdrift.app import App
from zkdrift.errors import DatabaseError, InvalidInputError, UnknownTreeError, ZkDriftError
from zkdrift.redact import Redactor
from zkdrift.reports.window import When, parse_when
from zkdrift.settings import Settings
from zkdrift.store.engine import safe_url
from zkdrift.store.models import Tree

Source = Engine | Session | App


def engine_of(source: Source) -> Engine:
    if isinstance(source, App):
        return source.db.engine
    if isinstance(source, Session):
        bind = source.get_bind()
        return bind if isinstance(bind, Engine) else bind.engine
    return source


def redactor_of(source: Source, redactor: Redactor | None = None) -> Redactor:
    if redactor is not None:
        return redactor
    if isinstance(source, App):
        return source.redactor()
    return Redactor()


def tree_row(conn: Connection, name: str) -> tuple[int, str]:
    row = conn.execute(select(Tree.id, Tree.root).where(Tree.name == name)).first()
    if row is None:
        known = list(conn.scalars(select(Tree.name).order_by(Tree.name)))
        raise UnknownTreeError(name, known)
    return int(row[0]), str(row[1])


def window_conditions(
    column: Any, since: When, until: When, now: dt.datetime | None = None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    lo, hi = parse_when(since, now=now), parse_when(until, now=now)
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column < hi)
    return conds


def read_frame(
    conn: Connection,
    query: Selectable,
    *,
    dates: Sequence[str] = (),
    ints: Sequence[str] = (),
    bools: Sequence[str] = (),
) -> pd.DataFrame:
    """Run ``query``; give date, integer and boolean columns stable dtypes, even when empty."""
    df = pd.read_sql(query, conn)
    for col in dates:
        df[col] = pd.to_datetime(df[col])
    for col in ints:
        df[col] = df[col].astype("Int64")
    for col in bools:
        df[col] = df[col].astype(bool)
    return df


def default_tree(source: Source) -> str | None:
    """The first registered tree (the oldest), or None when there is none."""
    with engine_of(source).connect() as conn:
        return conn.scalar(select(Tree.name).order_by(Tree.id).limit(1))


class NotebookSetupError(ZkDriftError):
    """Why a notebook cannot report: no database, no such tree. The message is the
    instruction; Jupyter shows it alone, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri") or str(parsed.database).startswith("file:"):
        return None  # a SQLite URI: its own rules (mode=ro, ...); let SQLite say
    return Path(str(parsed.database)).expanduser()


def notebook_app(database_url: str | None = None, secret_globs: Sequence[str] | None = None) -> App:
    """The App a notebook runs against: settings from the environment (``ZKDRIFT_*``,
    ``.env``), with ``database_url`` and ``secret_globs`` overriding them when given.

    A notebook only reads: a SQLite file that does not exist is never created.
    Raises :class:`NotebookSetupError` naming the file it looked for and how to
    point the notebook at a database.
    """
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = SecretStr(database_url)
    if secret_globs:
        overrides["secret_globs"] = list(secret_globs)
    settings = Settings(**overrides)
    path = _sqlite_file(settings.database_url_value)
    if path is not None and not path.is_file():
        if database_url:
            where = "named by the notebook's database_url parameter"
        elif settings.database_url is not None:
            where = "named by ZKDRIFT_DATABASE_URL"
        else:
            where = "the default, $ZKDRIFT_HOME/zkdrift.db: ZKDRIFT_DATABASE_URL is not set"
            if not os.environ.get("ZKDRIFT_HOME"):
                where += f" and ZKDRIFT_HOME is not set, so {settings.home}"
        raise NotebookSetupError(
            f"No zkdrift database at {path} ({where}). This notebook reads a database "
            "zkdrift has written and creates none. Point it at one: set ZKDRIFT_DATABASE_URL "
            "(sqlite:////path/to/zkdrift.db, or mysql+pymysql://user:password@host/zkdrift) "
            "or ZKDRIFT_HOME (the directory holding zkdrift.db) before starting Jupyter, "
            "or set database_url in the notebook's parameters cell."
        )
    return App(settings)


def notebook_tree(source: Source, name: str | None) -> str:
    """:func:`require_tree` for notebooks: a missing or unknown tree is a
    :class:`NotebookSetupError` (the message alone, no traceback)."""
    try:
        return require_tree(source, name)
    except DatabaseError as exc:
        raise NotebookSetupError(str(exc)) from None
    except (UnknownTreeError, InvalidInputError) as exc:
        raise NotebookSetupError(
            f"{exc}. Set tree in the notebook's parameters cell to a registered tree."
        ) from None


def require_tree(source: Source, name: str | None) -> str:
    """``name`` when it is a registered tree, else the first registered one.

    Raises :class:`~zkdrift.errors.UnknownTreeError` for an unknown name and
    :class:`~zkdrift.errors.InvalidInputError` when no tree is registered.
    """
    with engine_of(source).connect() as conn:
        if name:
            tree_row(conn, name)
            return name
    default = default_tree(source)
    if default is None:
        raise InvalidInputError(
            "no tree is registered in this database yet: register one with 'zkdrift tree add'"
        )
    return default


def database_label(source: Source) -> str:
    """The database URL with its password masked: the only form fit to display."""
    return safe_url(engine_of(source).url)
