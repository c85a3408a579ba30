"""Databases for tests: the MariaDB server the suite needs, and Apps on a test database."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from zkdrift.app import App
from zkdrift.settings import Settings
from zkdrift.store.engine import make_engine
from zkdrift.store.models import Base

MARIADB_ADMIN_URL = os.environ.get(
    "ZKDRIFT_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
POSTGRES_ADMIN_URL = os.environ.get(
    "ZKDRIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def make_app(db_url: str, home: Path, **overrides: object) -> App:
    settings = Settings(
        home=home, database_url=SecretStr(db_url), zk_connect_timeout=5.0, **overrides
    )
    return App(settings)


def truncate(url: str) -> None:
    """Empty every zkdrift table of a MariaDB database (between tests)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f"DELETE FROM {table.name}"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()
