"""What every report frame shares: where the data comes from, the tree, the window.

Every frame function takes a SQLAlchemy :class:`~sqlalchemy.Engine` or a
zkdrift :class:`~zkdrift.app.App`, a tree name and an optional
``since``/``until`` window (see :mod:`.window`), and returns one DataFrame
built by one SQL statement: joins and aggregation run in the database,
pandas only receives the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Selectable

from zkdrift.app import App
from zkdrift.errors import InvalidInputError, UnknownTreeError
from zkdrift.redact import Redactor
from zkdrift.reports.window import When, parse_when
from zkdrift.settings import Settings
from zkdrift.store.engine import safe_url
from zkdrift.store.models import Tree

Source = Engine | App


def engine_of(source: Source) -> Engine:
    return source.db.engine if isinstance(source, App) else source


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


def notebook_app(database_url: str | None = None, secret_globs: Sequence[str] | None = None) -> App:
    """The App a notebook runs against: settings from the environment (``ZKDRIFT_*``,
    ``.env``), with ``database_url`` and ``secret_globs`` overriding them when given."""
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = SecretStr(database_url)
    if secret_globs:
        overrides["secret_globs"] = list(secret_globs)
    return App(Settings(**overrides))


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
