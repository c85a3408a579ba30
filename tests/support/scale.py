"""Large trees seeded straight into the store: a recorded snapshot and a desired state
that differs from it by a known number of changes, without a ZooKeeper round trip.

The measured commands then read them back out (``zkdrift diff --snapshot``,
``export``, ``desired import``, ``plan`` against a recorded snapshot), which is the
"database -> out" half of the work; capture has tests of its own.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import rss
from tests.support.rss import Measured
from zkdrift.app import App
from zkdrift.model import Stat, Znode, digest, path_digest
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.blobs import store_blobs
from zkdrift.store.bulk import bulk_insert
from zkdrift.store.models import NodeState, Snapshot, Tree
from zkdrift.store.snapshots import acl_to_json, state_digest

ENVIRONMENTS = ("dev", "perf", "prod", "qa", "staging")  # sorted: trees stream in path order


@dataclass(frozen=True)
class Seeded:
    name: str
    root: str
    snapshot_id: int
    nodes: int
    changes: int


def _value(s: int, env: str, k: int) -> bytes:
    return b'{"service": %d, "env": "%s", "key": %d, "pool": %d}' % (
        s,
        env.encode(),
        k,
        (s * 31 + k) % 97,
    )


def tree_nodes(
    root: str, leaves: int, *, changes: int = 0, keys_per_env: int = 20, desired: bool = False
) -> Iterator[Znode]:
    """``/root/svc-N/ENV/key-K``, sorted by path, ``leaves`` leaves in all: the live tree
    (with a stat per node), or with ``desired`` the desired state ``changes`` away from
    it (a third of the changes modify a leaf, a third add one next to it, a third
    remove one, spread over the tree). 2,000 services of 5 environments of 100 keys
    make the issue's 1,012,001 znodes."""
    services = max(1, -(-leaves // (len(ENVIRONMENTS) * keys_per_env)))
    step = max(1, leaves // max(1, changes)) if changes else 0
    made = picked = 0
    zxid = 0

    def node(path: str, data: bytes, children: int = 0) -> Znode:
        nonlocal zxid
        zxid += 1
        if desired:
            return Znode(path, data)
        return Znode(
            path,
            data,
            Stat(
                version=zxid % 5,
                czxid=zxid,
                mzxid=zxid,
                pzxid=zxid,
                num_children=children,
                data_length=len(data),
            ),
        )

    yield node(root, b"", services)
    for s in range(services):
        service = f"{root}/svc-{s:05d}"
        yield node(service, b'{"owner": "team-%d"}' % (s % 17), len(ENVIRONMENTS))
        for env in ENVIRONMENTS:
            keys = min(keys_per_env, leaves - made)
            if keys <= 0:
                break
            parent = f"{service}/{env}"
            yield node(parent, b"", keys)
            added: list[Znode] = []
            for k in range(keys):
                path, data = f"{parent}/key-{k:02d}", _value(s, env, k)
                if desired and step and made % step == 0 and picked < changes:
                    kind = picked % 3
                    picked += 1
                    made += 1
                    if kind == 0:
                        yield node(path, data + b" changed")
                    elif kind == 1:
                        yield node(path, data)
                        added.append(node(f"{parent}/new-{picked}", b"new value %d" % picked))
                    continue  # kind 2: removed
                made += 1
                yield node(path, data)
            yield from sorted(added, key=lambda n: n.path)


def record_snapshot(app: App, tree: Tree, nodes: Iterable[Znode], chunk: int = 5000) -> int:
    """Record ``nodes`` as the tree's first snapshot, a chunk at a time: the rows
    :func:`zkdrift.store.snapshots.write_snapshot` writes for a first snapshot."""
    with app.db.session() as session:
        snap = Snapshot(
            tree_id=tree.id,
            started_at=T0,
            finished_at=T0,
            node_count=0,
            total_bytes=0,
            with_acl=False,
            source="seed",
        )
        session.add(snap)
        session.flush()
        rows: list[dict[str, Any]] = []
        values: dict[Any, bytes] = {}
        count = total = max_mzxid = 0
        for n in nodes:
            st = n.stat or Stat(data_length=len(n.data))
            dd = digest(n.data)
            rows.append(
                {
                    "tree_id": tree.id,
                    "path_digest": path_digest(n.path),
                    "path": n.path,
                    "state_digest": state_digest(dd, st, n.acl),
                    "data_digest": dd,
                    "data_length": len(n.data),
                    **{f: getattr(st, f) for f in _STAT_COLUMNS},
                    "acl": acl_to_json(n.acl),
                    "valid_from": snap.id,
                }
            )
            values[dd] = n.data
            count += 1
            total += len(n.data)
            max_mzxid = max(max_mzxid, st.mzxid)
            if len(rows) >= chunk:
                store_blobs(session, values)
                bulk_insert(session, NodeState, rows)
                rows, values = [], {}
        store_blobs(session, values)
        bulk_insert(session, NodeState, rows)
        snap.node_count, snap.total_bytes, snap.added = count, total, count
        snap.max_mzxid = max_mzxid
        session.flush()
        return snap.id


_STAT_COLUMNS = (
    "version",
    "cversion",
    "aversion",
    "czxid",
    "mzxid",
    "pzxid",
    "ctime",
    "mtime",
    "ephemeral_owner",
    "num_children",
)
T0 = dt.datetime(2026, 1, 1)


def seed(
    app: App,
    name: str,
    leaves: int,
    changes: int,
    *,
    root: str | None = None,
    keys_per_env: int = 20,
) -> Seeded:
    """Register ``name`` (no ZooKeeper check), record a snapshot of ``leaves`` leaves and
    make a desired state ``changes`` away from it the tree's current revision, all
    streamed (a million nodes seed in bounded memory)."""
    root = root or f"/{name}"
    with app.db.session() as session:
        tree = tree_store.add_tree(session, name=name, hosts="127.0.0.1:1", root=root)
    snapshot_id = record_snapshot(app, tree, tree_nodes(root, leaves, keys_per_env=keys_per_env))
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        desired_store.write_revision_stream(
            session,
            tree,
            tree_nodes(root, leaves, changes=changes, keys_per_env=keys_per_env, desired=True),
            author="seed",
            message="seeded",
            source="import",
        )
        node_count = session.get_one(Snapshot, snapshot_id).node_count
    return Seeded(name, root, snapshot_id, node_count, changes)


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run ``zkdrift ARGS`` in a subprocess and report its own peak RSS."""
    return rss.run_measured([sys.executable, "-m", "zkdrift", *args], env, cwd)
