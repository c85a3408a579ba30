"""Import and export of tree states: pure functions over bytes and files.

Exports (see :mod:`zkdrift.formats.zkjson` for the documented JSON format):

- :func:`dump_export` / :func:`write_export` / :func:`load_export` /
  :func:`parse_export`: the zkdrift JSON export, byte-exact both ways.
- :func:`dump_yaml`, :func:`dump_directory`, :func:`dump_zkshell_json`.

Desired-state import: :func:`load_desired` looks at ``source`` and reads

- a directory as a directory tree (:mod:`.directory`);
- a ``.yaml``/``.yml`` file as YAML (:mod:`.yamlfmt`);
- a ``.json`` file, or any other file whose first character is ``{``, as
  JSON: a zkdrift export when it has ``"format": "zkdrift-export"``, a
  zk-shell backup when the first entry is an object with ``"content"``
  (:mod:`.zkshell`: keys absolute, or relative to the copied node, placed
  under the root or a ``prefix``), else a flat mapping of path to value
  (:mod:`.flatjson`);
- anything else as YAML;
- a device or a socket not at all (``/dev/zero`` would never end).

Every importer returns nodes with ``stat=None``, sorted by path, and either
returns a complete state or raises :class:`FormatError` naming the file, the
line and the entry. Ephemeral nodes in exports and zk-shell backups are left
out: zkdrift never manages them.
"""

from __future__ import annotations

import stat
from pathlib import Path

from zkdrift.model import TreeState
from zkdrift.policy import MAX_OP_BYTES

from ._common import MAX_NESTING, StateBuilder, check_root
from ._json import parse_json
from .directory import NODE_DATA_FILE, dump_directory, load_directory
from .errors import FormatError
from .flatjson import flat_json_from_document, load_flat_json
from .yamlfmt import VALUE_KEY, dump_yaml, load_yaml
from .zkjson import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ExportDocument,
    dump_export,
    export_from_document,
    load_export,
    parse_export,
    write_export,
)
from .zkshell import (
    dump_zkshell_json,
    is_zkshell_document,
    load_zkshell_json,
    zkshell_from_document,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_NESTING",
    "NODE_DATA_FILE",
    "VALUE_KEY",
    "ExportDocument",
    "FormatError",
    "desired_from_export",
    "dump_directory",
    "dump_export",
    "dump_yaml",
    "dump_zkshell_json",
    "load_desired",
    "load_desired_json",
    "load_directory",
    "load_export",
    "load_flat_json",
    "load_yaml",
    "load_zkshell_json",
    "parse_export",
    "write_export",
]

_YAML_SUFFIXES = {".yaml", ".yml"}


def desired_from_export(export: ExportDocument, *, root: str, source: str) -> TreeState:
    """The desired state an export describes: no stat, no ephemeral nodes, under ``root``."""
    builder = StateBuilder(source, root)
    for node in export.state.values():
        if node.ephemeral:
            continue
        builder.add(node.path, node.data, line=None, acl=node.acl)
    return builder.build()


def _no_prefix(source: str, what: str) -> FormatError:
    return FormatError(
        source, f"--prefix places the keys of a zk-shell backup; this is {what}, not one"
    )


def load_desired_json(
    data: bytes, *, root: str, source: str = "<json>", prefix: str | None = None
) -> TreeState:
    """Read any of the JSON forms (export, zk-shell backup, flat mapping). ``prefix``
    places a zk-shell backup's keys (see :mod:`.zkshell`); other forms refuse it."""
    check_root(root)
    doc = parse_json(data, source)
    top = doc.value
    is_export = isinstance(top, dict) and "format" in top
    if not is_export and is_zkshell_document(top):
        return zkshell_from_document(doc, root=root, prefix=prefix)
    if prefix is not None:
        raise _no_prefix(source, "a zkdrift export" if is_export else "flat JSON")
    if is_export:
        export = export_from_document(doc)
        try:
            return desired_from_export(export, root=root, source=source)
        except FormatError as exc:
            raw_nodes = top.get("nodes", [])
            index = next((i for i, n in enumerate(raw_nodes) if n.get("path") == exc.entry), None)
            line = None if index is None else doc.line("nodes", index, "path")
            raise FormatError(source, exc.problem, line=line, entry=exc.entry) from None
    return flat_json_from_document(doc, root=root)


def _looks_like_json(data: bytes) -> bool:
    head = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"{")


def load_desired(
    source: Path, *, root: str, max_file_bytes: int = MAX_OP_BYTES, prefix: str | None = None
) -> TreeState:
    """Read a desired state from a directory, YAML or JSON file (see module docs).

    ``max_file_bytes`` bounds each file of a directory tree (see
    :mod:`.directory`). ``prefix`` places the keys of a zk-shell backup (see
    :mod:`.zkshell`); any other source refuses it. OSErrors from reading
    propagate unchanged; bad content raises FormatError.
    """
    check_root(root)
    if source.is_dir():
        if prefix is not None:
            raise _no_prefix(str(source), "a directory")
        return load_directory(source, root=root, max_file_bytes=max_file_bytes)
    mode = source.stat().st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        # /dev/zero and friends never end. A pipe is read (process
        # substitution hands one over), as is any regular file.
        raise FormatError(str(source), "not a file or a pipe (a device or socket)")
    data = source.read_bytes()
    suffix = source.suffix.lower()
    if suffix == ".json" or (suffix not in _YAML_SUFFIXES and _looks_like_json(data)):
        return load_desired_json(data, root=root, source=str(source), prefix=prefix)
    if prefix is not None:
        raise _no_prefix(str(source), "YAML")
    return load_yaml(data, root=root, source=str(source))
