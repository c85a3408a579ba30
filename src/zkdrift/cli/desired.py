"""``zkdrift desired``: import, export, set, unset, adopt, log and roll back desired state."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zkdrift import desired as desired_lib
from zkdrift.cli.common import (
    AsJson,
    Author,
    Message,
    Override,
    TreeName,
    console,
    emit_json,
    state,
    write_export,
)
from zkdrift.cli.reconcile import adopt
from zkdrift.errors import InvalidInputError
from zkdrift.formats import dump_directory, dump_yaml, dump_zkshell_json
from zkdrift.vocabulary import utc_text

desired_app = typer.Typer(
    help="The desired state of a tree: versioned, every change a revision.",
    no_args_is_help=True,
)
# One adopt, two doors: 'zkdrift adopt' and 'zkdrift desired adopt'.
desired_app.command("adopt")(adopt)

_FORMATS = ("json", "yaml", "zk-shell", "dir")


def _report(name: str, result: desired_lib.RevisionResult | None, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "tree": name,
                "changed": result is not None,
                "revision": None if result is None else result.as_json(),
            }
        )
        return
    if result is None:
        console.print(f"desired state of {name} unchanged; no revision written", markup=False)
        return
    origin = "" if result.source == result.origin else f"; {result.origin}"
    console.print(
        f"desired revision {result.revision} of {name}: {result.entries:,} entries, "
        f"+{result.added} -{result.removed} ~{result.modified} "
        f"(by {result.author}: {result.message}{origin})",
        markup=False,
    )


@desired_app.command("import")
def import_command(
    name: TreeName,
    source: Annotated[
        Path,
        typer.Argument(
            help="zkdrift JSON export, YAML, flat JSON, zk-shell JSON backup, or a directory."
        ),
    ],
    prefix: Annotated[
        str | None,
        typer.Option(
            "--prefix",
            metavar="PATH",
            help="zk-shell backups: the path the backup's '/' stands for (absolute, within"
            " the tree's root); its keys are read as relative to it.",
        ),
    ] = None,
    message: Message = None,
    author: Author = None,
    override: Override = False,
    as_json: AsJson = False,
) -> None:
    """Make a file's (or directory's) contents the desired state: all or nothing.

    A zk-shell backup ('cp /path json://FILE/...') is taken as it is when every
    key is under the tree's root. Made with 'cp /path json://FILE/', its keys
    are relative to the copied node ('/', '/a', '/a/b') and land under the
    root, or under --prefix PATH.
    """
    result = desired_lib.import_desired(
        state.app,
        name,
        source,
        message=message or f"import {source.name}",
        author=author,
        prefix=prefix,
        override=override,
    )
    _report(name, result, as_json)


def _value_bytes(value: str | None, file: Path | None, as_base64: bool) -> bytes:
    if (value is None) == (file is None):
        raise InvalidInputError("give the value either as VALUE or with --file PATH (not both)")
    if file is not None:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {file}: {exc.strerror or exc}") from None
    else:
        assert value is not None
        # Arguments that were not valid UTF-8 arrive as surrogate escapes:
        # turning them back gives the exact bytes that were typed.
        raw = value.encode("utf-8", "surrogateescape")
    if not as_base64:
        return raw
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"value is not valid base64: {exc}") from None


@desired_app.command("set")
def set_command(
    name: TreeName,
    path: Annotated[str, typer.Argument(help="Absolute znode path under the tree's root.")],
    value: Annotated[str | None, typer.Argument(help="The value (UTF-8 text).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Take the value's bytes from this file.")
    ] = None,
    as_base64: Annotated[
        bool, typer.Option("--base64", help="VALUE (or the --file) is base64.")
    ] = False,
    message: Message = None,
    author: Author = None,
    override: Override = False,
    as_json: AsJson = False,
) -> None:
    """Set one path's desired value (a new revision)."""
    data = _value_bytes(value, file, as_base64)
    result = desired_lib.set_value(
        state.app, name, path, data, message=message, author=author, override=override
    )
    _report(name, result, as_json)


@desired_app.command("unset")
def unset_command(
    name: TreeName,
    path: Annotated[str, typer.Argument(help="The path to remove from the desired state.")],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="With its whole subtree.")
    ] = False,
    message: Message = None,
    author: Author = None,
    override: Override = False,
    as_json: AsJson = False,
) -> None:
    """Remove a path from the desired state (a new revision)."""
    result = desired_lib.unset_value(
        state.app,
        name,
        path,
        recursive=recursive,
        message=message,
        author=author,
        override=override,
    )
    _report(name, result, as_json)


@desired_app.command("rollback")
def rollback_command(
    name: TreeName,
    revision: Annotated[int, typer.Argument(help="The revision to return to.")],
    message: Message = None,
    author: Author = None,
    override: Override = False,
    as_json: AsJson = False,
) -> None:
    """Make an old revision current again, as a new revision."""
    result = desired_lib.rollback(
        state.app, name, revision, message=message, author=author, override=override
    )
    _report(name, result, as_json)


@desired_app.command("sync")
def sync_command(
    name: TreeName,
    author: Author = None,
    as_json: AsJson = False,
) -> None:
    """Fetch the tree's desired source (Git); a new commit becomes a new revision.

    The same commit writes nothing. A commit whose content breaks a rule is
    refused, naming the file, and the previous revision stays current.
    """
    result = desired_lib.sync_desired(state.app, name, author=author)
    if as_json:
        emit_json(result.as_json())
        return
    if result.revision is None:
        console.print(
            f"desired state of {name} is up to date with {result.source}"
            f" (commit {result.commit[:12]}); nothing written",
            markup=False,
        )
        return
    rev = result.revision
    console.print(
        f"synced {name} from {result.source}: commit {result.commit[:12]}"
        f" is desired revision {rev.revision} ({rev.entries:,} entries,"
        f" +{rev.added} -{rev.removed} ~{rev.modified}; {rev.origin})",
        markup=False,
    )


@desired_app.command("log")
def log_command(
    name: TreeName,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="How many, newest first.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List desired-state revisions, newest first."""
    state.read_only()
    revisions = desired_lib.desired_log(state.app, name, limit=limit)
    if as_json:
        emit_json([r.as_json() for r in revisions])
        return
    if not revisions:
        console.print(
            f"tree {name!r} has no desired state yet; import one with "
            f"'zkdrift desired import {name} FILE'",
            markup=False,
        )
        return
    table = Table("rev", "created", "author", "source", "entries", "+", "-", "~", "message")
    for r in revisions:
        table.add_row(
            str(r.revision),
            utc_text(r.created_at),
            r.author,
            r.origin,
            f"{r.entries:,}",
            str(r.added),
            str(r.removed),
            str(r.modified),
            r.message,
        )
    console.print(table)


@desired_app.command("export")
def export_command(
    name: TreeName,
    revision: Annotated[
        int | None, typer.Option("--revision", help="Revision number (default: latest).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json (zkdrift export), yaml, zk-shell or dir.")
    ] = "json",
    output: Annotated[
        str, typer.Option("--output", "-o", help="File (or directory for 'dir'); '-' is stdout.")
    ] = "-",
) -> None:
    """Export the desired state, byte-exact (values are data here, not display)."""
    state.read_only()
    if fmt not in _FORMATS:
        raise InvalidInputError(f"--format {fmt!r}: choose one of {', '.join(_FORMATS)}")
    if fmt == "json":
        # Streamed out of the store: a desired state of any size in bounded memory.
        with desired_lib.export_desired_json(state.app, name, revision=revision) as (info, pieces):
            write_export(output, pieces)
        if output != "-":
            console.print(
                f"exported desired revision {info.revision} of {name}:"
                f" {info.entries:,} entries to {output}",
                markup=False,
            )
        return
    exported = desired_lib.export_desired(state.app, name, revision=revision)
    st = exported.state
    if fmt == "dir":
        if output == "-":
            raise InvalidInputError("--format dir writes a directory: give it with --output DIR")
        try:
            dump_directory(st, Path(output))
        except (OSError, ValueError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InvalidInputError(f"cannot write {output}: {problem}") from None
        console.print(
            f"exported desired revision {exported.revision} of {name}: "
            f"{len(st):,} entries to {output}",
            markup=False,
        )
        return
    payload = dump_yaml(st).encode("utf-8") if fmt == "yaml" else dump_zkshell_json(st)
    write_export(output, payload)
    if output == "-":
        return
    console.print(
        f"exported desired revision {exported.revision} of {name}: {len(st):,} entries to {output}",
        markup=False,
    )
