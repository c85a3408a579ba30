"""Registering trees and changing their connection, scope and policy.

The library calls behind ``zkdrift tree ...`` and ``seed --register``. A
tree is returned as a :class:`TreeInfo`: plain frozen data with its policy
parsed, never an ORM row.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zkdrift import paths
from zkdrift.app import App
from zkdrift.errors import InvalidInputError, RootNotFoundError
from zkdrift.policy import InvalidPolicyError, TreePolicy
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree
from zkdrift.vocabulary import iso
from zkdrift.zk import client as zk

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TREE_NAME = re.compile(r"[^\W_][\w.-]*")


@dataclass(frozen=True)
class TreeInfo:
    """A registered tree: where it lives, what zkdrift manages of it, and its policy."""

    name: str
    hosts: str
    root: str
    excludes: tuple[str, ...]
    includes: tuple[str, ...]
    capture_acl: bool
    auth_env: str | None
    policy: TreePolicy
    created_at: dt.datetime

    @classmethod
    def of(cls, tree: Tree) -> TreeInfo:
        return cls(
            name=tree.name,
            hosts=tree.hosts,
            root=tree.root,
            excludes=tuple(tree.excludes or ()),
            includes=tuple(tree.includes or ()),
            capture_acl=tree.capture_acl,
            auth_env=tree.auth_env,
            policy=tree.policy,
            created_at=tree.created_at,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hosts": self.hosts,
            "root": self.root,
            "excludes": list(self.excludes),
            "includes": list(self.includes),
            "capture_acl": self.capture_acl,
            "auth_env": self.auth_env,
            "policy": {
                **self.policy.model_dump(mode="json", exclude_none=True),
                **(
                    {"desired_source": self.policy.desired_source.describe()}
                    if self.policy.desired_source is not None
                    else {}
                ),
            },
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class TreeSpec:
    """What registering a tree takes."""

    name: str
    hosts: str
    root: str
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    capture_acl: bool = False
    auth_env: str | None = None
    policy: TreePolicy = field(default_factory=TreePolicy)

    def validate(self) -> None:
        check_tree_name(self.name)
        try:
            paths.validate_path(self.root)
        except paths.InvalidPathError as exc:
            raise InvalidInputError(f"invalid root: {exc}") from None
        zk.validate_hosts(self.hosts)
        check_auth_env(self.auth_env)


def check_tree_name(name: str) -> str:
    if not _TREE_NAME.fullmatch(name or ""):
        raise InvalidInputError(
            f"invalid tree name {name!r}: use letters, digits, '-', '_' and '.'"
            " (starting with a letter or digit)"
        )
    return name


def check_auth_env(auth_env: str | None) -> str | None:
    if auth_env is not None and not _ENV_NAME.fullmatch(auth_env):
        raise InvalidInputError(
            f"invalid --auth-env {auth_env!r}: give the name of an environment "
            "variable (letters, digits and '_')"
        )
    return auth_env


def add_tree(app: App, spec: TreeSpec, *, check: bool = True) -> TreeInfo:
    """Register a tree; with ``check``, first verify its root exists in ZooKeeper,
    connecting with the tree's own credentials (an unset ``auth_env`` fails here)."""
    spec.validate()
    if check:
        target = app.target_for(
            spec.hosts, tree_name=spec.name, auth_env=spec.auth_env, tls=spec.policy.tls
        )
        with zk.session(target) as client:
            if client.exists(spec.root) is None:
                raise RootNotFoundError(
                    f"root path {spec.root!r} does not exist in ZooKeeper at {spec.hosts}"
                )
    with app.db.session() as session:
        tree = tree_store.add_tree(
            session,
            name=spec.name,
            hosts=spec.hosts,
            root=spec.root,
            excludes=list(spec.excludes),
            includes=list(spec.includes),
            capture_acl=spec.capture_acl,
            auth_env=spec.auth_env,
            options=spec.policy.to_options(),
        )
        info = TreeInfo.of(tree)
    log.info("registered tree %s: %s%s", spec.name, spec.hosts, spec.root)
    return info


def tree_names(app: App) -> list[str]:
    with app.db.session() as session:
        return tree_store.tree_names(session)


def get_tree(app: App, name: str) -> TreeInfo:
    with app.db.session() as session:
        return TreeInfo.of(tree_store.get_tree(session, name))


def list_trees(app: App) -> list[TreeInfo]:
    """Every registered tree, by name. A tree whose stored policy is invalid raises."""
    with app.db.session() as session:
        return [TreeInfo.of(t) for t in tree_store.list_trees(session)]


def list_trees_checked(app: App) -> tuple[list[TreeInfo], list[InvalidPolicyError]]:
    """Every registered tree with a valid policy, and the errors of those without one."""
    good: list[TreeInfo] = []
    bad: list[InvalidPolicyError] = []
    with app.db.session() as session:
        for tree in tree_store.list_trees(session):
            try:
                good.append(TreeInfo.of(tree))
            except InvalidPolicyError as exc:
                bad.append(exc)
    return good, bad


def update_tree(
    app: App,
    name: str,
    *,
    hosts: str | None = None,
    excludes: Sequence[str] | None = None,
    auth_env: str | None = None,
    no_auth: bool = False,
    **policy_changes: Any,
) -> TreeInfo:
    """Change a tree's connect string, credentials' variable, exclude globs and policy
    fields, all or nothing.

    ``policy_changes`` name :class:`~zkdrift.policy.TreePolicy` fields
    (``schedule=None`` removes the schedule). ``no_auth`` drops the credentials.
    """
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        policy = tree.policy.changed(name, **policy_changes) if policy_changes else tree.policy
        if hosts is not None:
            tree.hosts = zk.validate_hosts(hosts)
        if excludes is not None:
            tree.excludes = list(excludes)
        if auth_env is not None:
            tree.auth_env = check_auth_env(auth_env)
        elif no_auth:
            tree.auth_env = None
        tree.policy = policy
        session.flush()
        return TreeInfo.of(tree)


def remove_tree(app: App, name: str) -> None:
    """Unregister a tree and delete its history from the database (ZooKeeper is untouched)."""
    with app.db.session() as session:
        tree_store.remove_tree(session, name)
    log.info("removed tree %s", name)
