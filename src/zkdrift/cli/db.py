"""``zkdrift db``: schema migrations."""

from __future__ import annotations

import typer

from zkdrift.cli.common import console, state
from zkdrift.store.engine import Database, head_revision

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def _database() -> Database:
    return Database(state.app.settings.database_url_value)


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the schema to the latest migration."""
    db = _database()
    try:
        db.upgrade()
        console.print(f"database {db.safe_url} is at {db.current_revision()}")
    finally:
        db.dispose()


@db_app.command("current")
def current() -> None:
    """Show the schema revision of the database and the latest one known."""
    db = _database()
    try:
        console.print(f"database: {db.safe_url}")
        console.print(f"current:  {db.current_revision() or '(empty)'}")
        console.print(f"head:     {head_revision()}")
    finally:
        db.dispose()
