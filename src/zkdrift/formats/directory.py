"""Desired states as a directory tree.

The directory is the root node. Below it:

- every regular file is a leaf node whose data is the file's bytes, exactly;
- every directory is a node with children, with empty data unless it holds
  a file named ``.zkdata``, whose bytes are that node's data (this is how
  the root node and any node with children carry data);
- names map to path segments one to one (unicode and spaces included), so
  ``dir/db/host`` is the node ``<root>/db/host``.

``.zkdata`` is reserved: a znode with that name cannot be represented.
File names that are not valid UTF-8, or that are not valid znode names, are
rejected naming the file.

A directory may come from anywhere (an archive, a checkout, another user),
so reading it never leaves it and never reads more than a value can hold:

- A symbolic link to a regular file is followed when its target, fully
  resolved, lies inside the directory being imported. A link that leads
  outside it (an absolute target, a ``..`` chain, a link to a link, a path
  through a linked directory) is refused without its target being opened.
  Links to directories are refused, so the walk never loops.
- FIFOs, sockets and devices are refused without being opened.
- A file larger than ``max_file_bytes`` (by default
  :data:`zkdrift.policy.MAX_OP_BYTES`, the largest value one ZooKeeper
  request carries) is refused by its size, before it is read.
- Directories nest at most :data:`MAX_NESTING` levels.
- Every file and directory is opened relative to its parent's descriptor
  without following links, and checked to be the file that was inspected,
  so a tree that changes during the import cannot slip in a link to
  somewhere else, or a FIFO that would block.

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
from zkdrift.policy import MAX_OP_BYTES

from ._common import MAX_NESTING, StateBuilder
from .errors import FormatError

NODE_DATA_FILE = ".zkdata"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: should a FIFO take a file's place after it was inspected, the
# open returns at once and the fstat that follows refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1024 * 1024


def _kind(mode: int) -> str:
    kinds = (
        (stat_mod.S_ISDIR, "a directory"),
        (stat_mod.S_ISLNK, "a symbolic link"),
        (stat_mod.S_ISFIFO, "a FIFO"),
        (stat_mod.S_ISSOCK, "a socket"),
        (stat_mod.S_ISCHR, "a character device"),
        (stat_mod.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


class _Reader:
    """One import of one directory, held open by descriptor while it is walked."""

    def __init__(self, top: Path, top_fd: int, builder: StateBuilder, max_file_bytes: int) -> None:
        self.top = top
        self.real_top = os.path.realpath(top)
        self.top_fd = top_fd
        self.builder = builder
        self.max_file_bytes = max_file_bytes

    def directory(self, fd: int, parts: tuple[str, ...], path: str) -> None:
        here = self.top.joinpath(*parts)
        rel = "/".join(parts)
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        data = b""
        for entry in entries:
            if entry.name == NODE_DATA_FILE:
                shown = here / entry.name
                if entry.is_dir(follow_symlinks=False):
                    raise FormatError(str(shown), f"{NODE_DATA_FILE} must be a regular file")
                data = self.value(fd, entry.name, shown, (*parts, entry.name))
        self.builder.add(path, data, line=None, entry=rel or ".")
        for entry in entries:
            if entry.name == NODE_DATA_FILE:
                continue
            child_parts = (*parts, entry.name)
            child_rel = "/".join(child_parts)
            shown = here / entry.name
            child = join(path, entry.name)
            try:
                self.builder.check_path(child, line=None, entry=child_rel)
            except FormatError as exc:
                raise FormatError(str(shown), exc.problem, entry=child_rel) from None
            if entry.is_dir(follow_symlinks=False):
                if len(child_parts) > MAX_NESTING:
                    raise FormatError(
                        str(shown),
                        f"directories nest deeper than {MAX_NESTING} levels",
                        entry=child_rel,
                    )
                sub = self._open(fd, entry.name, _DIR_FLAGS, shown, child_rel)
                try:
                    self.directory(sub, child_parts, child)
                finally:
                    os.close(sub)
            else:
                data = self.value(fd, entry.name, shown, child_parts)
                self.builder.add(child, data, line=None, entry=child_rel)

    def value(self, dir_fd: int, name: str, shown: Path, parts: tuple[str, ...]) -> bytes:
        """The bytes of the regular file ``name``, or of the file inside the
        tree that the link ``name`` leads to."""
        rel = "/".join(parts)
        info = self._stat(dir_fd, name, shown, rel)
        if not stat_mod.S_ISLNK(info.st_mode):
            return self._read(dir_fd, name, info, shown, rel)
        parent_fd, target = self._resolve_inside(parts, shown, rel)
        try:
            info = self._stat(parent_fd, target, shown, rel)
            if stat_mod.S_ISDIR(info.st_mode):
                raise FormatError(
                    str(shown), "symbolic links to directories are not supported", entry=rel
                )
            if stat_mod.S_ISLNK(info.st_mode):
                raise FormatError(str(shown), "symbolic link loop", entry=rel)
            return self._read(parent_fd, target, info, shown, rel)
        finally:
            os.close(parent_fd)

    def _resolve_inside(self, parts: tuple[str, ...], shown: Path, rel: str) -> tuple[int, str]:
        """Open the directory holding the link's final target; return its
        descriptor and the target's name. Refuses targets outside the tree."""
        real = os.path.realpath(os.path.join(self.real_top, *parts))
        if real == self.real_top:
            raise FormatError(
                str(shown), "symbolic links to directories are not supported", entry=rel
            )
        if os.path.commonpath([real, self.real_top]) != self.real_top:
            # The target is neither named nor opened: it may be anything
            # (/proc/self/environ, /dev/zero), and its name may say too much.
            raise FormatError(
                str(shown),
                f"symbolic link leads outside the imported directory {self.top}",
                entry=rel,
            )
        inside = Path(os.path.relpath(real, self.real_top)).parts
        fd = os.dup(self.top_fd)
        try:
            for part in inside[:-1]:
                sub = self._open(fd, part, _DIR_FLAGS, shown, rel)
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd, inside[-1]

    # A name that is gone by the time it is looked at is a link to nothing
    # or a file removed during the import; either way the file is named.
    def _stat(self, dir_fd: int, name: str, shown: Path, rel: str) -> os.stat_result:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise self._unreadable(exc, shown, rel) from None

    def _open(self, dir_fd: int, name: str, flags: int, shown: Path, rel: str) -> int:
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            raise self._unreadable(exc, shown, rel) from None

    @staticmethod
    def _unreadable(exc: OSError, shown: Path, rel: str) -> FormatError:
        if isinstance(exc, FileNotFoundError):
            return FormatError(str(shown), "broken symbolic link, or the file vanished", entry=rel)
        return FormatError(str(shown), f"cannot be read: {exc.strerror}", entry=rel)

    def _check_size(self, size: int, shown: Path, rel: str) -> None:
        if size > self.max_file_bytes:
            raise FormatError(
                str(shown),
                f"file is larger than {self.max_file_bytes:,} bytes, the largest value one "
                "ZooKeeper request carries",
                entry=rel,
            )

    def _read(self, dir_fd: int, name: str, info: os.stat_result, shown: Path, rel: str) -> bytes:
        if not stat_mod.S_ISREG(info.st_mode):
            raise FormatError(
                str(shown),
                f"not a regular file or directory ({_kind(info.st_mode)}); only regular "
                "files, directories and links to files inside the directory are read",
                entry=rel,
            )
        self._check_size(info.st_size, shown, rel)
        fd = self._open(dir_fd, name, _FILE_FLAGS, shown, rel)
        try:
            opened = os.fstat(fd)
            if not stat_mod.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
                info.st_dev,
                info.st_ino,
            ):
                raise FormatError(str(shown), "the file changed while being read", entry=rel)
            chunks: list[bytes] = []
            # One byte past the limit tells a file that grew since the stat.
            left = self.max_file_bytes + 1
            while left > 0:
                chunk = os.read(fd, min(left, _CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        self._check_size(len(data), shown, rel)
        return data


def load_directory(directory: Path, *, root: str, max_file_bytes: int = MAX_OP_BYTES) -> TreeState:
    """Read a directory tree as a desired state under ``root`` (see module docs)."""
    if not directory.is_dir():
        raise FormatError(str(directory), "not a directory")
    builder = StateBuilder(str(directory), root)
    top_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _Reader(directory, top_fd, builder, max_file_bytes).directory(top_fd, (), builder.root)
    finally:
        os.close(top_fd)
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
