"""Shared CLI plumbing: the app context, consoles, JSON output, progress, and the
option definitions every command shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from zkdrift.app import App
from zkdrift.errors import DatabaseError, InvalidInputError
from zkdrift.redact import Redactor
from zkdrift.settings import Settings
from zkdrift.store.engine import sqlite_file

# -- exit statuses ----------------------------------------------------------------------

EXIT_OK = 0  # success; for diff and plan: no differences
EXIT_ERROR = 1  # every error, usage errors included
EXIT_DIFFERENCES = 2  # diff and plan found differences; never an error

# -- options and arguments shared by the commands ---------------------------------------

TreeName = Annotated[str, typer.Argument(help="Registered tree name.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="JSON output.")]
Message = Annotated[
    str | None, typer.Option("--message", "-m", help="Why (recorded with the revision).")
]
Author = Annotated[
    str | None,
    typer.Option(
        "--author", help="Record as this author (default: $ZKDRIFT_AUTHOR or the OS user)."
    ),
]
Override = Annotated[
    bool,
    typer.Option(
        "--override",
        help="The tree's desired state comes from Git: make this change anyway,"
        " recorded as an override (the next commit synced replaces it).",
    ),
]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")]
SnapshotId = Annotated[
    int | None, typer.Option("--snapshot", help="Snapshot id (default: the latest).")
]
PathGlobs = Annotated[
    list[str],
    typer.Option("--paths", help="Only these path globs (a path stands for its subtree)."),
]

console = Console(highlight=False, soft_wrap=True)
# soft_wrap: an error stays one line however wide the terminal, for scripts to grep.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


DatabaseAccess = Literal["read", "write", "create"]


class _State:
    """Settings are built once, when the first command needs them.

    A command says how it uses the database before it first touches the app:
    ``read`` (:meth:`read_only`) refuses a SQLite file named by
    ZKDRIFT_DATABASE_URL or --db that does not exist, rather than create an
    empty one for a typo; ``write`` (the default) creates the file but not a
    missing directory; ``create`` (:meth:`creating`, for 'db upgrade') makes
    both. The default database ($ZKDRIFT_HOME/zkdrift.db) is made on first use
    by any command.
    """

    def __init__(self) -> None:
        self._app: App | None = None
        self._database_url: str | None = None
        self._url_source = "ZKDRIFT_DATABASE_URL"
        self._access: DatabaseAccess = "write"

    def configure(self, *, database_url: str | None, from_option: bool = False) -> None:
        self._database_url = database_url
        self._url_source = "--db" if from_option else "ZKDRIFT_DATABASE_URL"
        self._access = "write"

    def read_only(self) -> None:
        """This command only reads the database: never create one."""
        self._access = "read"

    def creating(self) -> None:
        """This command creates the database, and its directory, when they are missing."""
        self._access = "create"

    @property
    def app(self) -> App:
        if self._app is None:
            settings = Settings()
            if self._database_url:
                settings.database_url = SecretStr(self._database_url)
            self._check_database(settings)
            self._app = App(settings)
        return self._app

    def _check_database(self, settings: Settings) -> None:
        """Refuse an explicit SQLite URL that this command would create by mistake."""
        if settings.database_url is None or self._access == "create":
            return  # the default location is made on first use
        path = sqlite_file(settings.database_url_value)
        if path is None:
            return
        where = f"{path} ({self._url_source})"
        if self._access == "read" and not path.exists():
            raise DatabaseError(
                f"no database at {where}; run 'zkdrift db upgrade' to create one, or fix the path"
            )
        if not path.parent.is_dir():
            raise DatabaseError(
                f"no database at {where} and no directory {path.parent} for one; "
                "run 'zkdrift db upgrade' to create both, or fix the path"
            )

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


state = _State()


# How much of an error a summary table shows; the whole text follows the table.
TABLE_TEXT_WIDTH = 60


def shorten(text: str, width: int = TABLE_TEXT_WIDTH) -> str:
    """``text`` on one line of at most ``width`` characters, ending in "…" when cut."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    return line[: width - 1].rstrip() + "…"


def redactor() -> Redactor:
    """How values are shown to people: secrets as placeholders."""
    return state.app.redactor()


def emit_json(payload: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_export(output: str, payload: bytes | Iterable[bytes]) -> None:
    """Write an export (values unredacted, by design) to ``output``, or to stdout for '-'.

    ``payload`` may come in pieces (a streamed export), written as they come.
    A file is replaced whole or not at all. A terminal is refused: exports
    hold every value, secrets included, and must not land on a screen.
    """
    pieces = [payload] if isinstance(payload, bytes) else payload
    if output == "-":
        if sys.stdout.isatty():
            raise InvalidInputError(
                "refusing to print an export to the terminal: it holds every value "
                "unredacted, secrets included; give --output FILE or pipe it"
            )
        for piece in pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with tmp.open("wb") as out:
            for piece in pieces:
                out.write(piece)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(f"cannot write {output}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def capture_progress(
    label: str, *, enabled: bool, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar fed with node counts; silent when not on a terminal."""
    if not enabled or not err_console.is_terminal:
        yield lambda _n: None
        return
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} nodes"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=total)

        def update(count: int) -> None:
            progress.update(task, completed=count)

        yield update
