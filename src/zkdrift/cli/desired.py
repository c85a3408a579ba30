"""``zkdrift desired``: import, export, set, unset, adopt, log and roll back desired state."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from zkdrift import desired as desired_lib
from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, state, write_export
from zkdrift.errors import InvalidInputError
from zkdrift.formats import dump_directory, dump_export, dump_yaml, dump_zkshell_json

desired_app = typer.Typer(
    help="The desired state of a tree: versioned, every change a revision.",
    no_args_is_help=True,
)
app.add_typer(desired_app, name="desired")

_MESSAGE = typer.Option(None, "--message", "-m", help="Why (recorded with the revision).")
_AUTHOR = typer.Option(
    None, "--author", help="Record as this author (default: $ZKDRIFT_AUTHOR or the OS user)."
)
_JSON = typer.Option(False, "--json", help="JSON output.")
_FORMATS = ("json", "yaml", "zk-shell", "dir")


def _revision_json(result: desired_lib.RevisionResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "tree": result.tree,
        "revision": result.revision,
        "author": result.author,
        "message": result.message,
        "source": result.source,
        "created_at": result.created_at.isoformat(),
        "entries": result.entries,
        "added": result.added,
        "removed": result.removed,
        "modified": result.modified,
    }


def _report(name: str, result: desired_lib.RevisionResult | None, as_json: bool) -> None:
    if as_json:
        emit_json({"tree": name, "changed": result is not None, "revision": _revision_json(result)})
        return
    if result is None:
        console.print(f"desired state of {name} unchanged; no revision written", markup=False)
        return
    console.print(
        f"desired revision {result.revision} of {name}: {result.entries:,} entries, "
        f"+{result.added} -{result.removed} ~{result.modified} "
        f"(by {result.author}: {result.message})",
        markup=False,
    )


@desired_app.command("import")
def import_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    source: Path = typer.Argument(
        ..., help="zkdrift JSON export, YAML, flat JSON, zk-shell JSON backup, or a directory."
    ),
    message: str | None = _MESSAGE,
    author: str | None = _AUTHOR,
    as_json: bool = _JSON,
) -> None:
    """Make a file's (or directory's) contents the desired state: all or nothing."""
    result = desired_lib.import_desired(
        state.app, name, source, message=message or f"import {source.name}", author=author
    )
    _report(name, result, as_json)


def _value_bytes(value: str | None, file: Path | None, as_base64: bool) -> bytes:
    if (value is None) == (file is None):
        raise InvalidInputError("give the value either as VALUE or with --file F (not both)")
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
    name: str = typer.Argument(..., help="Registered tree name."),
    path: str = typer.Argument(..., help="Absolute znode path under the tree's root."),
    value: str | None = typer.Argument(None, help="The value (UTF-8 text)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Take the value's bytes from F."),
    as_base64: bool = typer.Option(False, "--base64", help="VALUE (or F) is base64."),
    message: str | None = _MESSAGE,
    author: str | None = _AUTHOR,
    as_json: bool = _JSON,
) -> None:
    """Set one path's desired value (a new revision)."""
    data = _value_bytes(value, file, as_base64)
    result = desired_lib.set_value(state.app, name, path, data, message=message, author=author)
    _report(name, result, as_json)


@desired_app.command("unset")
def unset_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    path: str = typer.Argument(..., help="The path to remove from the desired state."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="With its whole subtree."),
    message: str | None = _MESSAGE,
    author: str | None = _AUTHOR,
    as_json: bool = _JSON,
) -> None:
    """Remove a path from the desired state (a new revision)."""
    result = desired_lib.unset_value(
        state.app, name, path, recursive=recursive, message=message, author=author
    )
    _report(name, result, as_json)


@desired_app.command("adopt")
def adopt_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    snapshot_id: int | None = typer.Option(
        None, "--snapshot", help="Adopt this recorded snapshot (default: read live now)."
    ),
    message: str | None = _MESSAGE,
    author: str | None = _AUTHOR,
    as_json: bool = _JSON,
) -> None:
    """Desired := live: take what the tree holds now (or held at a snapshot) as desired."""
    result = desired_lib.adopt(
        state.app, name, snapshot_id=snapshot_id, message=message, author=author
    )
    if as_json:
        emit_json(
            {
                "tree": name,
                "snapshot_id": result.snapshot_id,
                "changed": result.revision is not None,
                "revision": _revision_json(result.revision),
                "applied_revision": result.applied_revision,
            }
        )
        return
    _report(name, result.revision, as_json=False)
    console.print(
        f"adopted snapshot {result.snapshot_id}; revision {result.applied_revision} "
        "is now recorded as applied",
        markup=False,
    )


@desired_app.command("rollback")
def rollback_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    revision: int = typer.Argument(..., help="The revision to return to."),
    message: str | None = _MESSAGE,
    author: str | None = _AUTHOR,
    as_json: bool = _JSON,
) -> None:
    """Make an old revision current again, as a new revision."""
    result = desired_lib.rollback(state.app, name, revision, message=message, author=author)
    _report(name, result, as_json)


@desired_app.command("log")
def log_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="How many, newest first."),
    as_json: bool = _JSON,
) -> None:
    """List desired-state revisions, newest first."""
    revisions = desired_lib.desired_log(state.app, name, limit=limit)
    if as_json:
        emit_json([_revision_json(r) for r in revisions])
        return
    if not revisions:
        console.print(
            f"tree {name!r} has no desired state yet; import one with "
            f"'zkdrift desired import {name} FILE'",
            markup=False,
        )
        return
    table = Table("rev", "created (UTC)", "author", "source", "entries", "+", "-", "~", "message")
    for r in revisions:
        table.add_row(
            str(r.revision),
            r.created_at.isoformat(sep=" ", timespec="seconds"),
            r.author,
            r.source,
            f"{r.entries:,}",
            str(r.added),
            str(r.removed),
            str(r.modified),
            r.message,
        )
    console.print(table)


@desired_app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Registered tree name."),
    revision: int | None = typer.Option(
        None, "--revision", help="Revision number (default: latest)."
    ),
    fmt: str = typer.Option(
        "json", "--format", help="json (zkdrift export), yaml, zk-shell or dir."
    ),
    output: str = typer.Option(
        "-", "--output", "-o", help="File (or directory for 'dir'); '-' is stdout."
    ),
) -> None:
    """Export the desired state, byte-exact (values are data here, not display)."""
    if fmt not in _FORMATS:
        raise InvalidInputError(f"--format {fmt!r}: choose one of {', '.join(_FORMATS)}")
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
    if fmt == "json":
        payload = dump_export(st, tree=name)
    elif fmt == "yaml":
        payload = dump_yaml(st).encode("utf-8")
    else:
        payload = dump_zkshell_json(st)
    write_export(output, payload)
    if output == "-":
        return
    console.print(
        f"exported desired revision {exported.revision} of {name}: {len(st):,} entries to {output}",
        markup=False,
    )
