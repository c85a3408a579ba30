"""ZooKeeper path validation and glob matching (pure functions)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence

from zkdrift.errors import InvalidInputError


class InvalidPathError(InvalidInputError, ValueError):
    """A string is not a valid absolute ZooKeeper path."""


_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff]")


def validate_path(path: str) -> str:
    """Return ``path`` if it is a valid absolute znode path, else raise.

    Follows ZooKeeper's PathUtils: absolute, no empty, ``.`` or ``..``
    segments, no trailing slash (except the root), no control characters.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError("path is empty")
    if not path.startswith("/"):
        raise InvalidPathError(f"path {path!r} is not absolute (must start with '/')")
    if path == "/":
        return path
    if path.endswith("/"):
        raise InvalidPathError(f"path {path!r} must not end with '/'")
    for segment in path[1:].split("/"):
        if segment == "":
            raise InvalidPathError(f"path {path!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise InvalidPathError(f"path {path!r} has a relative segment {segment!r}")
    match = _FORBIDDEN.search(path)
    if match:
        raise InvalidPathError(f"path {path!r} contains an invalid character {match.group()!r}")
    return path


def join(parent: str, child: str) -> str:
    return ("" if parent == "/" else parent) + "/" + child


def parent_of(path: str) -> str:
    if path == "/":
        return "/"
    head = path.rsplit("/", 1)[0]
    return head or "/"


def is_under(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or a descendant of it."""
    if root == "/":
        return path.startswith("/")
    return path == root or path.startswith(root + "/")


def depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    """Translate a path glob to a regex.

    ``*`` and ``?`` stay within one path segment, ``**`` spans any number of
    segments (including none), ``[abc]`` is a character class. A pattern
    without a leading ``/`` matches at any depth, like ``**/pattern``.
    """
    if not pattern.startswith("/") and not pattern.startswith("**"):
        pattern = "**/" + pattern
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    regex = "".join(out)
    if regex.startswith("(?:.*/)?"):
        # '**/x' at the start must still match an absolute path '/x'.
        regex = "(?:.*/)?" + regex[len("(?:.*/)?") :]
        regex = "/?" + regex
    return re.compile(regex + r"\Z", re.DOTALL)


def glob_match(path: str, pattern: str) -> bool:
    return _compile(pattern).match(path) is not None


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_match(path, p) for p in patterns)


def compile_globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex that matches a path when any of ``patterns`` does (None: no patterns):
    :func:`matches_any` in a single match instead of one per glob."""
    if not patterns:
        return None
    return re.compile(
        "|".join(f"(?:{_compile(p).pattern})" for p in dict.fromkeys(patterns)), re.DOTALL
    )


def is_excluded(path: str, excludes: Sequence[str]) -> bool:
    """True when ``path`` or any of its ancestors matches an exclude glob."""
    if not excludes:
        return False
    probe = path
    while True:
        if matches_any(probe, excludes):
            return True
        if probe == "/":
            return False
        probe = parent_of(probe)


def ancestors(path: str) -> Iterator[str]:
    """Yield the ancestors of ``path``, nearest first, ending with ``/``.

    The root has no ancestors.
    """
    while path != "/":
        path = parent_of(path)
        yield path


def basename(path: str) -> str:
    """The last segment of ``path`` (``""`` for the root)."""
    return path.rsplit("/", 1)[-1]


def matches_self_or_ancestor(path: str, patterns: Sequence[str]) -> bool:
    """True when ``path`` or any of its ancestors matches one of ``patterns``.

    The same rule as :func:`is_excluded`, named for callers that protect or
    redact whole subtrees rather than exclude them.
    """
    return is_excluded(path, patterns)
