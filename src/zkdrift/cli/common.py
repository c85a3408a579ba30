"""Shared CLI plumbing: the app context, consoles, JSON output, progress, and the
option definitions every command shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.redact import Redactor
from zkdrift.settings import Settings

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


class _State:
    """Settings are built once, when the first command needs them."""

    def __init__(self) -> None:
        self._app: App | None = None
        self._database_url: str | None = None

    def configure(self, *, database_url: str | None) -> None:
        self._database_url = database_url

    @property
    def app(self) -> App:
        if self._app is None:
            settings = Settings()
            if self._database_url:
                settings.database_url = SecretStr(self._database_url)
            self._app = App(settings)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


state = _State()


def redactor() -> Redactor:
    """How values are shown to people: secrets as placeholders."""
    return state.app.redactor()


def emit_json(payload: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_export(output: str, payload: bytes) -> None:
    """Write an export (values unredacted, by design) to ``output``, or to stdout for '-'.

    A file is replaced whole or not at all. A terminal is refused: exports
    hold every value, secrets included, and must not land on a screen.
    """
    if output == "-":
        if sys.stdout.isatty():
            raise InvalidInputError(
                "refusing to print an export to the terminal: it holds every value "
                "unredacted, secrets included; give --output FILE or pipe it"
            )
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_bytes(payload)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(f"cannot write {output}: {exc.strerror or exc}") from None


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
