"""The ``zkdrift`` command: thin, prints and asks; the library does the work."""

from __future__ import annotations

import logging
import sys

import typer

from zkdrift import __version__
from zkdrift.cli._common import console, err_console, state
from zkdrift.errors import ZkDriftError

app = typer.Typer(
    name="zkdrift",
    help="Snapshot, diff, reconcile and report on ZooKeeper configuration trees.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"zkdrift {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    database_url: str | None = typer.Option(
        None,
        "--db",
        envvar="ZKDRIFT_DATABASE_URL",
        help="SQLAlchemy database URL (default: SQLite in ZKDRIFT_HOME).",
        show_envvar=True,
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging (-vv)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # kazoo's DEBUG records print raw responses, znode data included: secrets
    # must never reach logs, so kazoo stays at INFO even with -vv.
    logging.getLogger("kazoo").setLevel(logging.ERROR if verbose < 2 else logging.INFO)
    state.configure(database_url=database_url)


def main() -> None:
    """Console entry point: errors become one clear line and exit code 1."""
    from zkdrift.cli import db, seed, snapshots, trees  # noqa: F401 - registers commands

    _register_optional()
    try:
        app()
    except ZkDriftError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        sys.exit(130)
    finally:
        state.close()


def _register_optional() -> None:
    """Command groups that live in their own modules register themselves on import."""
    import importlib

    for module in ("desired", "drift", "reconcile", "run", "report"):
        try:
            importlib.import_module(f"zkdrift.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"zkdrift.cli.{module}":
                raise
