"""``zkdrift db``: schema migrations and the integrity check."""

from __future__ import annotations

import typer
from rich.markup import escape

from zkdrift.cli.common import EXIT_ERROR, AsJson, console, emit_json, err_console, state
from zkdrift.store.check import check_database
from zkdrift.store.engine import Database, head_revision

db_app = typer.Typer(
    help="Database schema (Alembic migrations) and integrity.", no_args_is_help=True
)


def _database() -> Database:
    return Database(state.app.settings.database_url_value)


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or upgrade the schema to the latest migration."""
    state.creating()
    db = _database()
    try:
        db.upgrade()
        console.print(f"database {db.safe_url} is at {db.current_revision()}")
    finally:
        db.dispose()


@db_app.command("current")
def current() -> None:
    """Show the schema revision of the database and the latest one known."""
    state.read_only()
    db = _database()
    try:
        console.print(f"database: {db.safe_url}")
        console.print(f"current:  {db.current_revision() or '(empty)'}")
        console.print(f"head:     {head_revision()}")
    finally:
        db.dispose()


@db_app.command("check")
def check(as_json: AsJson = False) -> None:
    """Verify the stored history: one open row per path, every snapshot and revision
    rebuilds to its recorded size, every value is stored. Exit 1 on a problem."""
    state.read_only()
    app = state.app
    with app.db.session() as session:
        problems = check_database(session)
    if as_json:
        emit_json({"database": app.db.safe_url, "problems": [p.as_json() for p in problems]})
    elif not problems:
        console.print(f"database {app.db.safe_url}: no problems found", markup=False)
    else:
        for problem in problems:
            where = f"tree {problem.tree}: " if problem.tree else ""
            err_console.print(f"[bold red]problem:[/] {escape(where + problem.message)}")
        err_console.print(f"{len(problems)} problem(s) in database {escape(app.db.safe_url)}")
    if problems:
        raise typer.Exit(EXIT_ERROR)
