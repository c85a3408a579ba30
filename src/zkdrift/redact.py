"""Showing znode values to people without showing secrets.

Data stays bytes: nothing here decodes a value except :meth:`Redactor.render`,
whose job is to turn it into text for display.

A secret value never appears, and neither does a plain digest of it: a
SHA-256 of a short password is a lookup away from the password. Digests of
secret values shown to people (placeholders, JSON, recorded drift, the
audit) are HMAC-SHA256s under a key of this installation, kept outside the
database; they still tell two values apart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from typing import Any

from zkdrift.model import Znode, digest
from zkdrift.paths import compile_globs

# Matched against paths lowercased and with '-' and '_' removed, so
# ``DB_PASSWORD``, ``db-password`` and ``dbPassword`` are all caught by one glob.
DEFAULT_SECRET_GLOBS: tuple[str, ...] = (
    "**/*password*",
    "**/*passwd*",
    "**/*passphrase*",
    "**/*pwd*",
    "**/*pass",
    "**/*secret*",
    "**/*token*",
    "**/*credential*",
    "**/*privatekey*",
    "**/*apikey*",
    "**/*.pem",
    "**/*.key",
    "**/*keystore*",
    "**/*truststore*",
    "**/*jaas*",
    "**/*sasl*",
)

# Hex digits of a digest shown in placeholders: enough to tell values apart
# at a glance.
DIGEST_CHARS = 8

# C0 controls other than tab, newline and carriage return, DEL and C1
# controls. Text holding them is shown as binary: they are rarely
# configuration and can drive a terminal (escape sequences).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SEPARATORS = str.maketrans("", "", "-_")
# Verdicts a Redactor remembers (paths and their ancestors) before starting over.
_CACHE_SIZE = 100_000

# Without an installation key (a bare Redactor, in tests or a notebook with no
# home), secret digests still never leak: they are keyed for this process only.
_PROCESS_KEY = secrets.token_bytes(32)


def _bytes(n: int) -> str:
    return "1 byte" if n == 1 else f"{n} bytes"


def keyed_digest(key: bytes, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under ``key``, hex."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def binary_placeholder(data: bytes) -> str:
    """``<binary 42 bytes sha256:abcd1234…>``: a value that is not displayable text."""
    return f"<binary {_bytes(len(data))} sha256:{digest(data)[:DIGEST_CHARS]}…>"


class Redactor:
    """Decides which paths hold secrets and renders values accordingly.

    A path is secret when it, or any ancestor, matches one of the globs,
    ignoring case and the separators ``-`` and ``_``: ``/app/Secrets/db`` is
    secret because ``/app/Secrets`` matches ``**/*secret*``, and so is
    ``/app/API-Key`` (``**/*apikey*``). The default globs apply unless
    ``include_defaults`` is false; ``extra`` globs are added to them and
    match the path with or without its separators. ``key`` keys the digests
    of secret values (see :func:`keyed_digest`).
    """

    __slots__ = ("_cache", "_key", "_lowered", "_regex", "globs")

    def __init__(
        self,
        extra: Iterable[str] = (),
        *,
        include_defaults: bool = True,
        key: bytes | None = None,
    ) -> None:
        base = DEFAULT_SECRET_GLOBS if include_defaults else ()
        self.globs: tuple[str, ...] = (*base, *extra)
        self._lowered: tuple[str, ...] = tuple(g.lower() for g in self.globs)
        # Every glob in one regex; verdicts are cached per path, ancestors included:
        # siblings share their parent's verdict and cost one match each.
        self._regex = compile_globs(self._lowered)
        self._cache: dict[str, bool] = {}
        self._key = key or _PROCESS_KEY

    def __repr__(self) -> str:
        return f"Redactor(globs={self.globs!r})"

    def is_secret(self, path: str) -> bool:
        cache = self._cache
        cached = cache.get(path)
        if cached is not None:
            return cached
        regex = self._regex
        if regex is None:
            return False
        # Climb to the nearest ancestor with a verdict (or past the root), then
        # decide the way back down: a path is secret when it matches or its
        # parent is secret.
        unknown = [path]
        verdict = False
        probe = path
        while probe != "/":
            probe = probe[: probe.rfind("/")] or "/"
            known = cache.get(probe)
            if known is not None:
                verdict = known
                break
            unknown.append(probe)
        if len(cache) + len(unknown) > _CACHE_SIZE:
            cache.clear()
        for p in reversed(unknown):
            if not verdict:
                lowered = p.lower()
                verdict = (
                    regex.match(lowered.translate(_SEPARATORS)) is not None
                    or regex.match(lowered) is not None
                )
            cache[p] = verdict
        return verdict

    def digest(self, path: str, data: bytes) -> str:
        """The digest of a value as people may see it: keyed when ``path`` is secret."""
        return keyed_digest(self._key, data) if self.is_secret(path) else digest(data)

    def secret_placeholder(self, data: bytes) -> str:
        """``<redacted hmac:abcd1234… 42 bytes>``: a secret value, never its content."""
        short = keyed_digest(self._key, data)[:DIGEST_CHARS]
        return f"<redacted hmac:{short}… {_bytes(len(data))}>"

    def render(self, path: str, data: bytes) -> str:
        """``data`` as text for display.

        Secrets become :meth:`secret_placeholder`; values that are not
        UTF-8, or that hold control characters other than tab, newline and
        carriage return, become :func:`binary_placeholder`; anything else is
        the decoded text (empty data is the empty string).
        """
        if self.is_secret(path):
            return self.secret_placeholder(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return binary_placeholder(data)
        if _CONTROL.search(text):
            return binary_placeholder(data)
        return text


def node_json(redactor: Redactor, node: Znode | None) -> dict[str, Any] | None:
    """A node as JSON for people and scripts: its value rendered (redacted when
    secret), size, digest (``hmac`` keyed for secrets, else ``sha256``), whether
    it is secret or binary, and its ACL."""
    if node is None:
        return None
    rendered = redactor.render(node.path, node.data)
    secret = redactor.is_secret(node.path)
    return {
        "value": rendered,
        "size": len(node.data),
        "hmac" if secret else "sha256": redactor.digest(node.path, node.data),
        "secret": secret,
        "binary": not secret and rendered == binary_placeholder(node.data),
        "acl": None if node.acl is None else [a.render() for a in node.acl],
    }
