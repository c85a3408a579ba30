"""Registering trees and capturing snapshots: the library calls behind the CLI and flows."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkdrift import paths
from zkdrift.app import App
from zkdrift.errors import InvalidInputError, RootNotFoundError
from zkdrift.model import TreeState
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree, utcnow
from zkdrift.zk import client as zk
from zkdrift.zk.reader import read_tree

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class TreeSpec:
    name: str
    hosts: str
    root: str
    excludes: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    capture_acl: bool = False
    auth_env: str | None = None
    options: dict[str, Any] | None = None

    def validate(self) -> None:
        if (
            not self.name
            or not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum()
        ):
            raise InvalidInputError(
                f"invalid tree name {self.name!r}: use letters, digits, '-', '_' and '.'"
            )
        try:
            paths.validate_path(self.root)
        except paths.InvalidPathError as exc:
            raise InvalidInputError(f"invalid root: {exc}") from exc
        zk.validate_hosts(self.hosts)
        if self.auth_env is not None and not _ENV_NAME.fullmatch(self.auth_env):
            raise InvalidInputError(
                f"invalid --auth-env {self.auth_env!r}: give the name of an environment "
                "variable (letters, digits and '_')"
            )


def add_tree(app: App, spec: TreeSpec, *, check: bool = True) -> Tree:
    """Register a tree; with ``check``, first verify its root exists in ZooKeeper."""
    spec.validate()
    if check:
        target = zk.ZkTarget(
            hosts=spec.hosts,
            # The credentials the tree will use: a missing $auth_env fails here, not later.
            auth=app.auth_for(Tree(name=spec.name, auth_env=spec.auth_env)),
            connect_timeout=app.settings.zk_connect_timeout,
            session_timeout=app.settings.zk_session_timeout,
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
            options=spec.options,
        )
    log.info("registered tree %s: %s%s", spec.name, spec.hosts, spec.root)
    return tree


def read_live(app: App, tree: Tree, *, progress: Callable[[int], None] | None = None) -> TreeState:
    """Read the live tree from ZooKeeper (one session, pipelined)."""
    with zk.session(app.target(tree)) as client:
        return read_tree(
            client,
            tree.root,
            excludes=tree.excludes,
            with_acl=tree.capture_acl,
            progress=progress,
        )


def take_snapshot(
    app: App,
    name: str,
    *,
    progress: Callable[[int], None] | None = None,
    source: str = "cli",
) -> snapshot_store.SnapshotResult:
    """Capture the live tree and record it as one snapshot (one transaction)."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
    started = utcnow()
    t0 = time.perf_counter()
    state = read_live(app, tree, progress=progress)
    read_seconds = time.perf_counter() - t0
    return record_snapshot(
        app, tree, state, started_at=started, read_seconds=read_seconds, source=source
    )


def record_snapshot(
    app: App,
    tree: Tree,
    state: TreeState,
    *,
    started_at: Any = None,
    read_seconds: float = 0.0,
    source: str = "cli",
) -> snapshot_store.SnapshotResult:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, tree.name)
        result = snapshot_store.write_snapshot(
            session,
            tree,
            state,
            started_at=started_at or utcnow(),
            read_seconds=read_seconds,
            source=source,
        )
    log.info(
        "snapshot %d of %s: %d nodes, %d changed (+%d -%d ~%d)",
        result.snapshot_id,
        tree.name,
        result.node_count,
        result.changed,
        result.added,
        result.removed,
        result.modified,
    )
    return result


@dataclass(frozen=True)
class LoadedSnapshot:
    tree: Tree
    snapshot_id: int
    taken_at: dt.datetime
    state: TreeState


def load_snapshot(
    app: App, name: str, snapshot_id: int | None = None, *, under: str | None = None
) -> LoadedSnapshot:
    """Rebuild a recorded snapshot (the latest when ``snapshot_id`` is None)."""
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
        state = snapshot_store.load_snapshot(session, tree, snap, under=under)
        return LoadedSnapshot(tree, snap.id, snap.started_at, state)
