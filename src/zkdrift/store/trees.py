"""Registered trees."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zkdrift.errors import TreeExistsError, UnknownTreeError
from zkdrift.store.models import Tree


def tree_names(session: Session) -> list[str]:
    return list(session.scalars(select(Tree.name).order_by(Tree.name)))


def get_tree(session: Session, name: str) -> Tree:
    tree = session.scalar(select(Tree).where(Tree.name == name))
    if tree is None:
        raise UnknownTreeError(name, tree_names(session))
    return tree


def list_trees(session: Session) -> list[Tree]:
    return list(session.scalars(select(Tree).order_by(Tree.name)))


def add_tree(
    session: Session,
    *,
    name: str,
    hosts: str,
    root: str,
    excludes: list[str] | None = None,
    includes: list[str] | None = None,
    capture_acl: bool = False,
    auth_env: str | None = None,
    options: dict[str, Any] | None = None,
) -> Tree:
    if session.scalar(select(Tree.id).where(Tree.name == name)) is not None:
        raise TreeExistsError(f"tree {name!r} is already registered")
    tree = Tree(
        name=name,
        hosts=hosts,
        root=root,
        excludes=list(excludes or []),
        includes=list(includes or []),
        capture_acl=capture_acl,
        auth_env=auth_env,
        options=dict(options or {}),
    )
    session.add(tree)
    session.flush()
    return tree
