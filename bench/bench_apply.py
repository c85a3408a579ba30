"""apply: ``zkdrift apply`` of ~1,500 changes to a 20k-znode tree vs zk-shell ``mirror``.

The live tree is ``generate_tree()``; the desired state is ``mutate()`` of it: 1,000
values set, 400 keys created and one environment subtree (101 nodes) deleted. zk-shell
mirrors a copy of the desired tree onto a copy of the live one
(``mirror <src> <dst> true false true``): the same changes, made its way.

zkdrift's side is the whole apply, end to end: take the tree's lock, read live, record
the snapshot, load desired, plan (1,501 ops, each carrying the version it was planned
against) and persist the plan, write the ops in compare-and-set transactions, read
the tree back and verify that live equals desired, record that snapshot and the audit.
It is timed as

- the library call ``apply_tree(..., yes=True, prune=True)`` on a tree that was
  snapshotted before (steady state: the snapshots write only what changed);
- the same on a tree never snapshotted (the first snapshot writes every node);
- the CLI, ``zkdrift apply NAME --yes --prune`` in a subprocess (interpreter start-up
  included, as for zk-shell).

Every result is verified outside the timed region: after each apply the live tree
must read back equal to the desired tree, and zk-shell's result is checked by
``bench.peer``.

    python -m bench.bench_apply [--json results.json] [--db URL]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr

from bench.common import Row, arg_parser, kazoo_client, report, timed, zookeeper_hosts
from bench.peer import time_zkshell_mirror
from bench.treegen import compare_trees, delete_tree, generate_tree, join, load_tree, mutate
from bench.treegen import read_tree as read_relative
from zkdrift.app import App
from zkdrift.model import TreeState
from zkdrift.reconcile import apply_tree
from zkdrift.settings import Settings
from zkdrift.snapshot import take_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.trees import TreeSpec, add_tree

ROOT = "/bench-apply"
SRC = f"{ROOT}/src"  # zk-shell: the desired tree
DST = f"{ROOT}/dst"  # zk-shell: the live tree it mirrors onto
TREES = ("warm", "cold", "cli")  # zkdrift: one live copy per measurement
CLI_ARGS = ("apply", "cli", "--yes", "--prune", "--json")


def _register(app: App, hosts: str, name: str, desired: dict[str, bytes]) -> None:
    root = f"{ROOT}/{name}"
    add_tree(app, TreeSpec(name=name, hosts=hosts, root=root))
    state = TreeState.of(
        root, {join(root, rel): data for rel, data in desired.items()} | {root: b""}
    )
    with app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        desired_store.write_revision(
            session, tree, state, author="bench", message="bench", source="bench"
        )


def _verify(hosts: str, root: str, desired: dict[str, bytes]) -> None:
    with kazoo_client(hosts) as client:
        diff = compare_trees(desired, read_relative(client, root))
    if diff.total:
        raise SystemExit(f"after zkdrift apply, {root} still differs from desired: {diff}")


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser("apply: zkdrift apply vs zk-shell mirror on a 20k-znode tree")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    live_nodes = generate_tree(args.services, args.environments, args.keys, args.seed)
    desired_nodes = mutate(live_nodes)
    expected = compare_trees(live_nodes, desired_nodes)
    with (
        tempfile.TemporaryDirectory(prefix="zkdrift-bench-apply-") as tmp,
        zookeeper_hosts(args.hosts) as hosts,
    ):
        with kazoo_client(hosts) as client:
            delete_tree(client, ROOT)
            load_tree(client, SRC, desired_nodes)
            load_tree(client, DST, live_nodes)
            for name in TREES:
                load_tree(client, f"{ROOT}/{name}", live_nodes)
        db_url = args.db or f"sqlite:///{Path(tmp) / 'zkdrift.db'}"
        home = Path(tmp) / "home"
        app = App(Settings(home=home, database_url=SecretStr(db_url)))
        try:
            for name in TREES:
                _register(app, hosts, name, desired_nodes)
            take_snapshot(app, "warm", source="bench")  # a tree zkdrift already watches
            take_snapshot(app, "cli", source="bench")

            results = {}
            for name in ("warm", "cold"):
                with timed() as t:
                    result = apply_tree(app, name, yes=True, prune=True, source="bench")
                if result.outcome != "applied" or result.ops_applied != expected.total:
                    raise SystemExit(f"zkdrift apply of {name}: {result}")
                _verify(hosts, f"{ROOT}/{name}", desired_nodes)
                results[name] = (t.seconds, result)
        finally:
            app.close()

        env = dict(os.environ, ZKDRIFT_DATABASE_URL=db_url, ZKDRIFT_HOME=str(home))
        with timed() as cli:
            proc = subprocess.run(
                [sys.executable, "-c", "from zkdrift.cli import main; main()", *CLI_ARGS],
                env=env,
                capture_output=True,
                check=False,
            )
        if proc.returncode != 0:
            raise SystemExit(f"zkdrift apply exited {proc.returncode}: {proc.stderr[-2000:]!r}")
        _verify(hosts, f"{ROOT}/cli", desired_nodes)

        peer = time_zkshell_mirror(hosts, SRC, DST)
        if args.hosts:
            with kazoo_client(hosts) as client:
                delete_tree(client, ROOT)

    n = len(live_nodes) + 1
    label = f"apply {expected.total:,} changes to {n:,} znodes"
    warm_seconds, warm = results["warm"]
    cold_seconds, _cold = results["cold"]
    batches = f"{warm.ops_applied} ops, CAS transactions, verified by a re-read"
    rows = [
        Row(f"{label}: apply_tree, steady state", warm_seconds, peer, batches),
        Row(f"{label}: apply_tree, first snapshot", cold_seconds, peer, "snapshots write all"),
        Row(f"{label}: CLI 'zkdrift apply'", cli.seconds, peer, "subprocess, JSON output"),
    ]
    report(
        rows,
        args.json,
        meta={
            "nodes": n,
            "changes": expected.total,
            "sets": len(expected.changed),
            "creates": len(expected.added),
            "deletes": len(expected.removed),
            "database": "sqlite" if args.db is None else args.db.split(":", 1)[0],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
