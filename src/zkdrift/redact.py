"""Showing znode values to people without showing secrets.

Data stays bytes: nothing here decodes a value except :meth:`Redactor.render`,
whose job is to turn it into text for display.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from zkdrift.model import Znode, digest
from zkdrift.paths import matches_self_or_ancestor

DEFAULT_SECRET_GLOBS: tuple[str, ...] = (
    "**/*password*",
    "**/*passwd*",
    "**/*secret*",
    "**/*token*",
    "**/*credential*",
    "**/*private_key*",
    "**/*apikey*",
    "**/*api_key*",
)

# Hex digits of the sha256 shown in placeholders: enough to tell values
# apart at a glance, and the full digest is in the store anyway.
DIGEST_CHARS = 8

# C0 controls other than tab, newline and carriage return, DEL and C1
# controls. Text holding them is shown as binary: they are rarely
# configuration and can drive a terminal (escape sequences).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _short(data: bytes) -> str:
    return f"sha256:{digest(data)[:DIGEST_CHARS]}…"


def _bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


def secret_placeholder(data: bytes) -> str:
    """``<redacted sha256:abcd1234… 42 bytes>``: a secret value, never its content."""
    return f"<redacted {_short(data)} {_bytes(len(data))}>"


def binary_placeholder(data: bytes) -> str:
    """``<binary 42 bytes sha256:abcd1234…>``: a value that is not displayable text."""
    return f"<binary {_bytes(len(data))} {_short(data)}>"


class Redactor:
    """Decides which paths hold secrets and renders values accordingly.

    A path is secret when it, or any ancestor, matches one of the globs,
    ignoring case: ``/app/Secrets/db`` is secret because ``/app/Secrets``
    matches ``**/*secret*``. The default globs apply unless
    ``include_defaults`` is false; ``extra`` globs are added to them.
    """

    __slots__ = ("_cache", "_lowered", "globs")

    def __init__(self, extra: Iterable[str] = (), *, include_defaults: bool = True) -> None:
        base = DEFAULT_SECRET_GLOBS if include_defaults else ()
        self.globs: tuple[str, ...] = (*base, *extra)
        self._lowered: tuple[str, ...] = tuple(g.lower() for g in self.globs)
        self._cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Redactor(globs={self.globs!r})"

    def is_secret(self, path: str) -> bool:
        cached = self._cache.get(path)
        if cached is None:
            cached = bool(self._lowered) and matches_self_or_ancestor(path.lower(), self._lowered)
            if len(self._cache) < 100_000:
                self._cache[path] = cached
        return cached

    def render(self, path: str, data: bytes) -> str:
        """``data`` as text for display.

        Secrets become :func:`secret_placeholder`; values that are not
        UTF-8, or that hold control characters other than tab, newline and
        carriage return, become :func:`binary_placeholder`; anything else is
        the decoded text (empty data is the empty string).
        """
        if self.is_secret(path):
            return secret_placeholder(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return binary_placeholder(data)
        if _CONTROL.search(text):
            return binary_placeholder(data)
        return text


def node_json(redactor: Redactor, node: Znode | None) -> dict[str, Any] | None:
    """A node as JSON for people and scripts: its value rendered (redacted when
    secret), size, digest, whether it is secret or binary, and its ACL."""
    if node is None:
        return None
    rendered = redactor.render(node.path, node.data)
    secret = redactor.is_secret(node.path)
    return {
        "value": rendered,
        "size": len(node.data),
        "sha256": node.data_digest,
        "secret": secret,
        "binary": not secret and rendered == binary_placeholder(node.data),
        "acl": None if node.acl is None else [a.render() for a in node.acl],
    }
