"""Large trees seeded straight into the store: a recorded snapshot and a desired state
that differs from it by a known number of changes, without a ZooKeeper round trip.

The measured commands then read them back out (``zkdrift diff --snapshot``,
``export``, ``desired import``, ``plan`` against a recorded snapshot), which is the
"database -> out" half of the work; capture has tests of its own.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zkdrift.app import App
from zkdrift.model import Stat, TreeState, Znode
from zkdrift.store import desired as desired_store
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store

ENVIRONMENTS = ("prod", "staging", "qa", "dev", "perf")
KEYS_PER_ENV = 20


@dataclass(frozen=True)
class Seeded:
    name: str
    root: str
    snapshot_id: int
    nodes: int
    changes: int


def tree_paths(root: str, leaves: int) -> Iterator[tuple[str, bytes]]:
    """``/root/svc-N/ENV/key-K`` with a JSON value per leaf and small values on the
    parents, parents first; ``leaves`` leaves in all."""
    yield root, b""
    services = max(1, -(-leaves // (len(ENVIRONMENTS) * KEYS_PER_ENV)))
    made = 0
    for s in range(services):
        service = f"{root}/svc-{s:05d}"
        yield service, b'{"owner": "team-%d"}' % (s % 17)
        for env in ENVIRONMENTS:
            parent = f"{service}/{env}"
            yield parent, b""
            for k in range(KEYS_PER_ENV):
                if made == leaves:
                    break
                made += 1
                yield (
                    f"{parent}/key-{k:02d}",
                    b'{"service": %d, "env": "%s", "key": %d, "pool": %d}'
                    % (s, env.encode(), k, (s * 31 + k) % 97),
                )


def live_state(root: str, leaves: int) -> TreeState:
    nodes = {}
    for i, (path, data) in enumerate(tree_paths(root, leaves)):
        stat = Stat(version=i % 5, czxid=i + 1, mzxid=i + 1, pzxid=i + 1, data_length=len(data))
        nodes[path] = Znode(path, data, stat)
    return TreeState(root, nodes)


def desired_state(live: TreeState, changes: int) -> TreeState:
    """``live`` with ``changes`` changes: a third modified, a third added, a third of
    the leaves removed (spread over the tree)."""
    nodes = {p: Znode(p, n.data) for p, n in live.nodes.items()}
    leaves = [p for p in live.nodes if p.rsplit("/", 1)[-1].startswith("key-")]
    step = max(1, len(leaves) // max(1, changes))
    picked = leaves[::step][:changes]
    for i, path in enumerate(picked):
        kind = i % 3
        if kind == 0:
            nodes[path] = Znode(path, nodes[path].data + b" changed")
        elif kind == 1:
            added = path.rsplit("/", 1)[0] + f"/new-{i}"
            nodes[added] = Znode(added, b"new value %d" % i)
        else:
            del nodes[path]
    return TreeState(live.root, nodes)


def seed(app: App, name: str, leaves: int, changes: int, *, root: str | None = None) -> Seeded:
    """Register ``name`` (no ZooKeeper check), record a snapshot of ``leaves`` leaves and
    make a desired state ``changes`` away from it the tree's current revision."""
    root = root or f"/{name}"
    live = live_state(root, leaves)
    with app.db.session() as session:
        tree = tree_store.add_tree(session, name=name, hosts="127.0.0.1:1", root=root)
        result = snapshot_store.write_snapshot(
            session, tree, live, started_at=dt.datetime(2026, 1, 1), read_seconds=0.0
        )
        desired_store.write_revision(
            session,
            tree,
            desired_state(live, changes),
            author="seed",
            message="seeded",
            source="import",
        )
    return Seeded(name, root, result.snapshot_id, len(live), changes)


@dataclass(frozen=True)
class Measured:
    exit_code: int
    stdout: bytes
    stderr: bytes
    peak_rss_kib: int


def run_measured(args: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run ``zkdrift ARGS`` in a subprocess and report its own peak RSS.

    The child is reaped with ``wait4``, whose resource usage is this child's
    alone (``RUSAGE_CHILDREN`` would mix in every earlier child).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zkdrift", *args], env=env, cwd=cwd, stdout=out, stderr=err
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read(), err.read(), usage.ru_maxrss)
