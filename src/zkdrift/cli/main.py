"""The ``zkdrift`` Typer application: global options, logging, every command
registered here explicitly, and :func:`run_command`, which turns errors into
one line and an exit status.

Exit statuses: 0 success (and no differences), 2 differences (``diff``,
``plan``) and nothing else, 1 every error, usage errors included.
"""

from __future__ import annotations

import errno
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import typer
import typer.main
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from zkdrift import __version__, stopping
from zkdrift.cli import (
    db,
    desired,
    drift,
    promote,
    reconcile,
    report,
    run,
    seed,
    snapshots,
    status,
    trees,
    watch,
)
from zkdrift.cli.common import EXIT_DIFFERENCES, EXIT_ERROR, EXIT_OK, console, err_console, state
from zkdrift.cli.help import click_style
from zkdrift.errors import ZkDriftError
from zkdrift.zk.client import describe_error

EXIT_CODES_HELP = (
    f"Exit status: {EXIT_OK} success (diff and plan: no differences); "
    f"{EXIT_DIFFERENCES} differences found (diff, plan), and nothing else; "
    f"{EXIT_ERROR} any error, usage errors (an unknown option, a missing argument, "
    "a bad value) included."
)

app = typer.Typer(
    name="zkdrift",
    help="Snapshot, diff, reconcile and report on ZooKeeper configuration trees.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain Click help and errors: no markup or emoji codes read into help texts
    # ('scheme:id:perms' stays text), one 'Error:' line a script can grep.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"zkdrift {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
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
    _configure_logging(logging.WARNING - 10 * min(verbose, 2))
    # kazoo's DEBUG records print raw responses, znode data included: secrets
    # must never reach logs, so kazoo stays at INFO even with -vv.
    logging.getLogger("kazoo").setLevel(logging.ERROR if verbose < 2 else logging.INFO)
    source = ctx.get_parameter_source("database_url")
    state.configure(
        database_url=database_url,
        from_option=source is not None and source.name == "COMMANDLINE",
    )


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Logs to whatever ``sys.stderr`` is when a record is emitted."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _configure_logging(level: int) -> None:
    """Log to stderr at ``level``, whoever configured the root logger before us."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


# -- commands ------------------------------------------------------------------------

COMMANDS: dict[str, Callable[..., None]] = {
    "snapshot": snapshots.snapshot,
    "snapshots": snapshots.snapshots,
    "show": snapshots.show,
    "export": snapshots.export,
    "diff": drift.diff_command,
    "history": drift.history_command,
    "plan": reconcile.plan,
    "apply": reconcile.apply,
    "adopt": reconcile.adopt,
    "promote": promote.promote,
    "restore": promote.restore,
    "audit": reconcile.audit,
    "status": status.status,
    "report": report.report,
    "serve": run.serve_command,
    "seed": seed.seed_command,
    "watch": watch.watch_command,
}
GROUPS: dict[str, typer.Typer] = {
    "tree": trees.tree_app,
    "desired": desired.desired_app,
    "lock": reconcile.lock_app,
    "run": run.run_app,
    "db": db.db_app,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)


@functools.cache
def cli_command() -> Any:
    """The Click command tree behind ``app``, with Click's metavars (see :mod:`.help`)."""
    command = typer.main.get_command(app)
    click_style(command)
    return command


def run_command(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit status.

    Errors zkdrift raises on purpose become one clear line on stderr and
    status 1; anything else is a bug and keeps its traceback. Usage errors
    keep Click's message (usage line, hint, ``Error: ...``) and exit 1 too:
    2 is kept for "differences found".
    """
    try:
        with stopping.sigterm_handled():
            code = cli_command().main(args=argv, prog_name="zkdrift", standalone_mode=False)
        if code == 130:
            err_console.print("[red]interrupted[/]")
        return code if isinstance(code, int) else EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except typer.TyperException as exc:  # Click's usage errors, and bad values
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"Error: {escape(exc.format_message())}", highlight=False)
        return EXIT_ERROR
    except typer.Abort:
        err_console.print("Aborted!")
        return EXIT_ERROR
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader went away (``zkdrift ... | head``)
            return EXIT_ERROR
        raise
    except ZkDriftError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 1
    except (KazooException, KazooTimeoutError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(describe_error(exc))}", highlight=False)
        return 1
    except SQLAlchemyError as exc:
        # The database went away mid-command. Bound values are never part of the
        # message (hide_parameters), and the URL is not either.
        cause = getattr(exc, "orig", None) or exc
        err_console.print(
            f"[bold red]error:[/] database error: {escape(type(cause).__name__)}: "
            f"{escape(str(cause).splitlines()[0] if str(cause) else '')}",
            highlight=False,
        )
        return 1
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        return 130
    except stopping.Terminated:
        err_console.print("[red]stopped by SIGTERM[/]")
        return stopping.EXIT_STATUS
    finally:
        state.close()
    return 0


def main() -> None:
    """Console entry point."""
    sys.exit(run_command(sys.argv[1:]))
