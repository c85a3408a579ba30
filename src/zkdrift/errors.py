"""Errors that reach the user. Each message names the problem and what to do."""

from __future__ import annotations


class ZkDriftError(Exception):
    """Base for errors the CLI reports without a traceback (exit code 1)."""


class UnknownTreeError(ZkDriftError):
    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none registered yet"
        super().__init__(
            f"unknown tree {name!r}; known trees: {listing} (register one with 'zkdrift tree add')"
        )
        self.name = name
        self.known = known


class TreeExistsError(ZkDriftError):
    pass


class UnknownSnapshotError(ZkDriftError):
    pass


class ZkConnectError(ZkDriftError):
    pass


class RootNotFoundError(ZkDriftError):
    pass


class InvalidInputError(ZkDriftError):
    pass


class DatabaseError(ZkDriftError):
    pass
