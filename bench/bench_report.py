"""Render the drift and history report over 100 snapshots of a ~20,000-znode tree.

History: the generated tree is loaded into a throwaway ZooKeeper and read
once through the library (``read_live`` + ``record_snapshot``, the two steps of
``take_snapshot``, so the baseline can be dated); the other 99 snapshots are
recorded with ``record_snapshot`` from mutated copies of that state (a few
hundred values rewritten, a few nodes added and removed each time), one an
hour, which is what re-reading ZooKeeper would record but much faster to
build. Every fifth snapshot is followed by a drift check against the desired
state (recorded with the drift store), and every 25th by an adopt that makes
the desired state equal live, so drift opens, ages and is reconciled.

Timed: ``render_report`` (both notebooks executed with papermill, HTML
rendered), plus each report frame on its own. zk-shell has nothing to compare
with, so there is no peer column. Target: under a minute.

    python -m bench.bench_report [--snapshots 100] [--changes 300] [--db URL] [--json FILE]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import tempfile
from pathlib import Path

from pydantic import SecretStr

from bench.common import Row, arg_parser, kazoo_client, report, timed, zookeeper_hosts
from bench.treegen import generate_tree, load_tree
from zkdrift import reports
from zkdrift.app import App
from zkdrift.diff import classify
from zkdrift.model import Stat, TreeState, Znode
from zkdrift.reports.render import render_report
from zkdrift.settings import Settings
from zkdrift.snapshot import read_live, record_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import drift as drift_store
from zkdrift.store import trees as tree_store
from zkdrift.store.engine import Database
from zkdrift.store.models import Apply
from zkdrift.trees import TreeSpec, add_tree

ROOT = "/bench-report"
NAME = "bench"


def mutate_state(
    state: TreeState, rng: random.Random, changes: int, zxid: int, when: dt.datetime
) -> TreeState:
    """``state`` with ``changes`` leaf values rewritten, and a few leaves added and removed."""
    nodes = dict(state.nodes)
    leaves = [p for p in nodes if p.count("/") == ROOT.count("/") + 4]
    mtime = int(when.timestamp() * 1000)
    for i, path in enumerate(rng.sample(leaves, changes)):
        old = nodes[path]
        stat = old.stat or Stat()
        data = old.data[:-8] + rng.randbytes(4).hex().encode()
        nodes[path] = Znode(
            path,
            data,
            dataclasses.replace(
                stat, version=stat.version + 1, mzxid=zxid + i, mtime=mtime, data_length=len(data)
            ),
            old.acl,
        )
    for path in rng.sample(leaves, 3):
        nodes.pop(path, None)
    for i in range(3):
        parent = rng.choice(leaves).rsplit("/", 1)[0]
        path = f"{parent}/added_{zxid}_{i}"
        nodes[path] = Znode(
            path, b'{"added":true}', Stat(czxid=zxid, mzxid=zxid, ctime=mtime, mtime=mtime)
        )
    return TreeState(state.root, nodes)


def build_history(app: App, hosts: str, snapshots: int, changes: int, seed: int) -> None:
    tree_nodes = generate_tree(seed=seed)
    with kazoo_client(hosts) as client:
        load_tree(client, ROOT, tree_nodes)
    add_tree(app, TreeSpec(name=NAME, hosts=hosts, root=ROOT), check=False)
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=snapshots)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, NAME)
    # take_snapshot() in its two steps, to date the baseline at the start of the history.
    with timed() as read:
        state = read_live(app, tree)  # through ZooKeeper, once
    record_snapshot(app, tree, state, started_at=start, read_seconds=read.seconds, source="bench")
    with app.db.session() as session:
        tree = tree_store.get_tree(session, NAME)
        written = desired_store.write_revision(
            session, tree, state, author="bench", message="baseline", source="bench"
        )
        assert written is not None
        desired_store.mark_applied(session, tree, written[0])
    rng = random.Random(seed)
    zxid = 10**9
    for n in range(1, snapshots):
        when = start + dt.timedelta(hours=n)
        zxid += changes + 10
        state = mutate_state(state, rng, changes, zxid, when)
        record_snapshot(app, tree, state, started_at=when, source="bench")
        if n % 5 == 0:
            check(app, state, when + dt.timedelta(minutes=1))
        if n % 25 == 0:
            adopt(app, state, when + dt.timedelta(minutes=2))


def check(app: App, live: TreeState, when: dt.datetime) -> None:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, NAME)
        revision = desired_store.latest_revision(session, tree)
        desired = desired_store.load_desired(session, tree, revision)
        items = classify(desired_store.applied_state(session, tree), desired, live)
        drift_store.record_run(
            session,
            tree,
            items,
            against="desired",
            snapshot_id=None,
            desired_revision_id=revision.id if revision else None,
            started_at=when,
            source="bench",
        )


def adopt(app: App, live: TreeState, when: dt.datetime) -> None:
    with app.db.session() as session:
        tree = tree_store.get_tree(session, NAME)
        written = desired_store.write_revision(
            session, tree, live, author="bench", message="adopt live", source="bench"
        )
        revision = written[0] if written else desired_store.latest_revision(session, tree)
        desired_store.mark_applied(session, tree, revision)
        session.add(
            Apply(
                tree_id=tree.id,
                direction="adopt",
                actor="bench",
                reason="adopt live",
                host="bench",
                started_at=when,
                finished_at=when + dt.timedelta(seconds=3),
                outcome="applied",
                desired_revision_id=revision.id if revision else None,
            )
        )


def main() -> None:
    parser = arg_parser("report: 100 snapshots of a 20k-znode tree rendered to HTML")
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--changes", type=int, default=300, help="values rewritten per snapshot")
    parser.add_argument("--db", default=None, help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zkdrift-bench-report-") as tmp:
        home = Path(tmp)
        url = args.db or f"sqlite:///{home / 'zkdrift.db'}"
        Database(url).upgrade()
        app = App(Settings(home=home, database_url=SecretStr(url)))
        try:
            with zookeeper_hosts(args.hosts) as hosts, timed() as build:
                build_history(app, hosts, args.snapshots, args.changes, args.seed)
            print(
                f"history: {args.snapshots} snapshots of a "
                f"{reports.summary(app, NAME).iloc[0]['nodes']:,}-znode tree built in "
                f"{build.seconds:.1f}s (snapshot 1 read from ZooKeeper, "
                f"{args.snapshots - 1} recorded with record_snapshot from mutated TreeStates, "
                f"~{args.changes} values changed between snapshots)"
            )
            rows = []
            for label, fn in (
                ("summary", lambda: reports.summary(app, NAME)),
                ("snapshots_over_time", lambda: reports.snapshots_over_time(app, NAME)),
                (
                    "change_log (newest 50, values)",
                    lambda: reports.change_log(app, NAME, limit=50, values=True),
                ),
                ("change_log (all)", lambda: reports.change_log(app, NAME)),
                ("churn_by_path", lambda: reports.churn_by_path(app, NAME)),
                ("churn_by_subtree", lambda: reports.churn_by_subtree(app, NAME)),
                ("drift_over_time", lambda: reports.drift_over_time(app, NAME)),
                ("open_drift", lambda: reports.open_drift(app, NAME)),
                ("time_to_reconcile", lambda: reports.time_to_reconcile(app, NAME)),
                ("apply_audit", lambda: reports.apply_audit(app, NAME)),
            ):
                with timed() as t:
                    frame = fn()
                rows.append(Row(f"frame: {label}", t.seconds, None, f"{len(frame):,} rows"))
            output = home / "report.html"
            with timed() as render:
                render_report(app, NAME, output=output)
            size = output.stat().st_size
            rows.append(
                Row(
                    "render_report (2 notebooks -> HTML)",
                    render.seconds,
                    None,
                    f"{size / 1024:.0f} KiB HTML; target < 60 s: "
                    + ("met" if render.seconds < 60 else "MISSED"),
                )
            )
        finally:
            app.close()
    report(rows, args.json, meta={"snapshots": args.snapshots, "changes": args.changes})
    print(f"report rendered in {render.seconds:.1f}s")


if __name__ == "__main__":
    main()
