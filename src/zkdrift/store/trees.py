"""Registered trees."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from zkdrift.errors import TreeExistsError, UnknownTreeError
from zkdrift.store.models import (
    Apply,
    ApplyOp,
    Configuration,
    DesiredRevision,
    DriftItem,
    DriftRun,
    NodeState,
    PlanOp,
    PlanRecord,
    Snapshot,
    Tree,
)


def tree_names(session: Session) -> list[str]:
    return list(session.scalars(select(Tree.name).order_by(Tree.name)))


def get_tree(session: Session, name: str) -> Tree:
    tree = session.scalar(select(Tree).where(Tree.name == name))
    if tree is None:
        raise UnknownTreeError(name, tree_names(session))
    return tree


def lock_tree(session: Session, tree: Tree) -> None:
    """Serialise the writers of one tree's history until the session's transaction ends.

    A snapshot, a desired revision and a drift run each compare what they
    write with what the tree's history holds; two of them at once would both
    close the same rows and open duplicates. Call this before reading that
    history. On MySQL/MariaDB and PostgreSQL it is a row lock on the tree
    (the second writer waits, then reads what the first committed: the
    engine reads committed data, see ``make_engine``). SQLite has one
    writer at a time already; the update takes its write lock now, before
    the history is read, instead of at the first insert.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Tree).where(Tree.id == tree.id).values(id=Tree.id),
            execution_options={"synchronize_session": False},
        )
    else:
        session.execute(select(Tree.id).where(Tree.id == tree.id).with_for_update())


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


def remove_tree(session: Session, name: str) -> None:
    """Delete a tree and all of its history (values in ``blobs`` are shared and stay)."""
    tree = get_tree(session, name)
    tid = tree.id
    # Children before parents, explicitly: not every backend enforces the cascades.
    session.execute(
        delete(ApplyOp).where(ApplyOp.apply_id.in_(select(Apply.id).where(Apply.tree_id == tid)))
    )
    session.execute(delete(Apply).where(Apply.tree_id == tid))
    session.execute(
        delete(PlanOp).where(
            PlanOp.plan_id.in_(select(PlanRecord.id).where(PlanRecord.tree_id == tid))
        )
    )
    session.execute(delete(PlanRecord).where(PlanRecord.tree_id == tid))
    session.execute(delete(DriftItem).where(DriftItem.tree_id == tid))
    session.execute(delete(DriftRun).where(DriftRun.tree_id == tid))
    session.execute(delete(Configuration).where(Configuration.tree_id == tid))
    session.execute(delete(DesiredRevision).where(DesiredRevision.tree_id == tid))
    session.execute(delete(NodeState).where(NodeState.tree_id == tid))
    session.execute(delete(Snapshot).where(Snapshot.tree_id == tid))
    session.delete(tree)
    session.flush()
