"""Desired states as a directory tree.

The directory is the root node. Below it:

- every regular file is a leaf node whose data is the file's bytes, exactly;
- every directory is a node with children, with empty data unless it holds
  a file named ``.zkdata``, whose bytes are that node's data (this is how
  the root node and any node with children carry data);
- names map to path segments one to one (unicode and spaces included), so
  ``dir/db/host`` is the node ``<root>/db/host``.

``.zkdata`` is reserved: a znode with that name cannot be represented.
Symbolic links to files are followed; links to directories, and special
files, are rejected. File names that are not valid UTF-8, or that are not
valid znode names, are rejected naming the file.

:func:`dump_directory` writes the same layout. Nodes that are ancestors of
other nodes become directories; a state that lacks some ancestors (or the
root) gains them, with empty data, when read back.
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

from zkdrift.model import TreeState
from zkdrift.paths import is_under, join, parent_of

from ._common import StateBuilder
from .errors import FormatError

NODE_DATA_FILE = ".zkdata"


def _walk(directory: Path, path: str, rel: str, builder: StateBuilder) -> None:
    data_file = directory / NODE_DATA_FILE
    data = b""
    entries = sorted(os.scandir(directory), key=lambda e: e.name)
    for entry in entries:
        if entry.name == NODE_DATA_FILE:
            if not entry.is_file():
                raise FormatError(str(data_file), f"{NODE_DATA_FILE} must be a regular file")
            data = data_file.read_bytes()
    builder.add(path, data, line=None, entry=rel or ".")
    for entry in entries:
        if entry.name == NODE_DATA_FILE:
            continue
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        shown = str(directory / entry.name)
        child = join(path, entry.name)
        try:
            builder.check_path(child, line=None, entry=child_rel)
        except FormatError as exc:
            raise FormatError(shown, exc.problem, entry=child_rel) from None
        if entry.is_symlink() and entry.is_dir():
            raise FormatError(
                shown, "symbolic links to directories are not supported", entry=child_rel
            )
        if entry.is_dir(follow_symlinks=False):
            _walk(Path(entry.path), child, child_rel, builder)
        elif entry.is_file():
            builder.add(child, Path(entry.path).read_bytes(), line=None, entry=child_rel)
        else:
            kind = stat_mod.filemode(entry.stat(follow_symlinks=False).st_mode)[0]
            raise FormatError(
                shown, f"not a regular file or directory (type {kind!r})", entry=child_rel
            )


def load_directory(directory: Path, *, root: str) -> TreeState:
    """Read a directory tree as a desired state under ``root`` (see module docs)."""
    if not directory.is_dir():
        raise FormatError(str(directory), "not a directory")
    builder = StateBuilder(str(directory), root)
    _walk(directory, builder.root, "", builder)
    return builder.build()


def dump_directory(state: TreeState, directory: Path) -> None:
    """Write ``state`` as a directory tree in ``directory`` (new or empty)."""
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; refusing to mix states")
    root = state.root
    has_children: set[str] = set()
    for path in state:
        if not is_under(path, root):
            raise ValueError(f"node {path!r} is outside the state's root {root!r}")
        if path != root:
            has_children.add(parent_of(path))
    directory.mkdir(parents=True, exist_ok=True)

    def location(path: str) -> Path:
        rel = path[len(root) :].lstrip("/") if root != "/" else path.lstrip("/")
        parts = rel.split("/") if rel else []
        if NODE_DATA_FILE in parts:
            raise ValueError(
                f"node {path!r} cannot be written: {NODE_DATA_FILE!r} is reserved "
                "for a node's own data"
            )
        return directory.joinpath(*parts)

    for path in sorted(state):
        target = location(path)
        data = state[path].data
        if path == root or path in has_children:
            target.mkdir(parents=True, exist_ok=True)
            if data:
                (target / NODE_DATA_FILE).write_bytes(data)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
