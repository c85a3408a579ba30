"""Errors that reach the user. Each message names the problem and what to do.

Everything zkdrift raises on purpose derives from :class:`ZkDriftError`, so
the CLI and the flows report it as one line (exit code 1) without a
traceback. Anything else is a bug.
"""

from __future__ import annotations


class ZkDriftError(Exception):
    """Base for errors the CLI reports without a traceback (exit code 1)."""


class InvalidInputError(ZkDriftError):
    """Input that breaks a rule: a bad path, file, option or policy."""


class UnknownTreeError(ZkDriftError):
    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none registered yet"
        super().__init__(
            f"unknown tree {name!r}; known trees: {listing} (register one with 'zkdrift tree add')"
        )
        self.name = name
        self.known = known

    def __reduce__(self) -> tuple[object, tuple[str, list[str]]]:
        return (UnknownTreeError, (self.name, self.known))


class TreeExistsError(ZkDriftError):
    pass


class UnknownSnapshotError(ZkDriftError):
    pass


class ZkConnectError(ZkDriftError):
    pass


class RootNotFoundError(ZkDriftError):
    pass


class DatabaseError(ZkDriftError):
    pass
