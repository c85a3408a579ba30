"""Helpers shared by the importers: strict base64 and an all-or-nothing state builder."""

from __future__ import annotations

import base64
import binascii

from zkdrift.model import Acl, TreeState, Znode
from zkdrift.paths import InvalidPathError, is_under, validate_path

from .errors import FormatError

# Deepest nesting any reader accepts: mappings and lists in YAML and JSON,
# directories in a directory tree. Real configuration nests a handful of
# levels; the bound keeps every reader's recursion (and PyYAML's and json's)
# far inside Python's stack, so hostile input gets a FormatError, not a
# RecursionError.
MAX_NESTING = 100


def b64decode_strict(text: object) -> bytes:
    """Decode standard base64 with padding; anything else raises ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_root(root: str) -> str:
    """Validate the ``root`` argument of a loader (a caller error, not a file error)."""
    return validate_path(root)


class StateBuilder:
    """Collects nodes for one source and turns them into a TreeState.

    Every entry is checked as it is added (valid path, under root, not seen
    before), so a loader either finishes with a complete state or raises a
    FormatError naming the first bad entry.
    """

    def __init__(self, source: str, root: str) -> None:
        self.source = source
        self.root = check_root(root)
        self._nodes: dict[str, Znode] = {}
        self._lines: dict[str, int | None] = {}

    def error(self, problem: str, *, line: int | None, entry: str | None) -> FormatError:
        return FormatError(self.source, problem, line=line, entry=entry)

    def check_path(self, path: object, *, line: int | None, entry: str | None = None) -> str:
        shown = entry if entry is not None else str(path)
        if not isinstance(path, str):
            raise self.error(
                f"a path must be a string, got {type(path).__name__}", line=line, entry=shown
            )
        try:
            validate_path(path)
        except InvalidPathError as exc:
            raise self.error(f"invalid ZooKeeper path: {exc}", line=line, entry=shown) from None
        if not is_under(path, self.root):
            raise self.error(f"path {path!r} is outside root {self.root!r}", line=line, entry=shown)
        return path

    def text_bytes(self, value: object, *, line: int | None, entry: str) -> bytes | None:
        """A null value as empty data and a string as its UTF-8 bytes; None for any
        other type (the format decides what else it accepts)."""
        if value is None:
            return b""
        if not isinstance(value, str):
            return None
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # The codec's message quotes the character; the position is enough.
            raise self.error(
                f"value is not encodable as UTF-8 (a lone surrogate at character {exc.start})",
                line=line,
                entry=entry,
            ) from None

    def add(
        self,
        path: object,
        data: bytes,
        *,
        line: int | None,
        entry: str | None = None,
        acl: tuple[Acl, ...] | None = None,
    ) -> None:
        checked = self.check_path(path, line=line, entry=entry)
        if checked in self._nodes:
            first = self._lines[checked]
            where = "" if first is None else f" (first defined at line {first})"
            raise self.error(
                f"path {checked!r} is defined more than once{where}",
                line=line,
                entry=entry if entry is not None else checked,
            )
        self._nodes[checked] = Znode(checked, data, None, acl)
        self._lines[checked] = line

    def build(self) -> TreeState:
        return TreeState(self.root, {p: self._nodes[p] for p in sorted(self._nodes)})
