"""diff: ``zkdrift diff`` of a 20k-znode tree against its desired state vs zk-shell ``diff``.

The live tree is ``generate_tree()`` loaded at ``/bench-diff/a``; the desired state is
``mutate()`` of it (about 1,500 differences), imported into zkdrift from a zkdrift
export. zk-shell diffs ``/bench-diff/a`` against a copy of the desired tree loaded at
``/bench-diff/b``: the same differences, found its way.

zkdrift's side is the whole drift check, end to end: read the live tree, record it as
a snapshot, load the desired state and what was last applied, classify every
difference and record the drift run. It is timed as

- the library call ``check_drift`` (what a flow runs), first on a tree never
  snapshotted (the snapshot writes every node) and then in steady state (the tree was
  snapshotted before, so the snapshot writes only what changed; median of a few runs);
- the CLI, ``zkdrift diff NAME`` in a subprocess, printing the 1,500 value diffs
  (interpreter start-up included, as for zk-shell).

Every result is verified outside the timed region: zkdrift must report exactly the
differences ``compare_trees()`` expects, and zk-shell's listing is checked by
``bench.peer``.

    python -m bench.bench_diff [--json results.json] [--db URL]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import SecretStr

from bench.common import Row, arg_parser, kazoo_client, report, timed, zookeeper_hosts
from bench.peer import time_zkshell_diff, time_zkshell_startup
from bench.treegen import compare_trees, delete_tree, generate_tree, join, load_tree, mutate
from zkdrift.app import App
from zkdrift.desired import import_desired
from zkdrift.drift import DriftReport, check_drift
from zkdrift.formats import dump_export
from zkdrift.model import ChangeKind, TreeState
from zkdrift.settings import Settings
from zkdrift.trees import TreeSpec, add_tree

ROOT = "/bench-diff"
LIVE = f"{ROOT}/a"
COPY = f"{ROOT}/b"
STEADY_RUNS = 3


def _verify(report: DriftReport, expected_changed: int, added: int, removed: int) -> None:
    kinds = {k: 0 for k in ChangeKind}
    for item in report.items:
        kinds[item.kind] += 1
    got = (kinds[ChangeKind.DATA_CHANGED], kinds[ChangeKind.ADDED], kinds[ChangeKind.REMOVED])
    if got != (expected_changed, added, removed):
        raise SystemExit(
            f"zkdrift reported (changed, added, removed) = {got}, "
            f"expected {(expected_changed, added, removed)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser("diff: zkdrift diff vs zk-shell diff on a 20k-znode tree")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    live_nodes = generate_tree(args.services, args.environments, args.keys, args.seed)
    desired_nodes = mutate(live_nodes)
    expected = compare_trees(live_nodes, desired_nodes)
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="zkdrift-bench-diff-") as tmp,
        zookeeper_hosts(args.hosts) as hosts,
    ):
        with kazoo_client(hosts) as client:
            delete_tree(client, ROOT)
            load_tree(client, LIVE, live_nodes)
            load_tree(client, COPY, desired_nodes)
        db_url = args.db or f"sqlite:///{Path(tmp) / 'zkdrift.db'}"
        settings = Settings(home=Path(tmp) / "home", database_url=SecretStr(db_url))
        app = App(settings)
        try:
            add_tree(app, TreeSpec(name="bench", hosts=hosts, root=LIVE))
            desired_state = TreeState.of(
                LIVE, {join(LIVE, rel): data for rel, data in desired_nodes.items()} | {LIVE: b""}
            )
            export = Path(tmp) / "desired.json"
            export.write_bytes(dump_export(desired_state, tree="bench"))
            import_desired(app, "bench", export, message="bench", author="bench")

            with timed() as first:
                report_first = check_drift(app, "bench", source="bench")
            counts = (len(expected.changed), len(expected.added), len(expected.removed))
            _verify(report_first, *counts)
            steady: list[float] = []
            for _ in range(STEADY_RUNS):
                with timed() as t:
                    report_steady = check_drift(app, "bench", source="bench")
                steady.append(t.seconds)
                _verify(report_steady, *counts)
        finally:
            app.close()

        env = dict(os.environ, ZKDRIFT_DATABASE_URL=db_url, ZKDRIFT_HOME=str(Path(tmp) / "home"))
        with timed() as cli:
            proc = subprocess.run(
                [sys.executable, "-c", "from zkdrift.cli import main; main()", "diff", "bench"],
                env=env,
                capture_output=True,
                check=False,
            )
        if proc.returncode != 2:
            raise SystemExit(f"zkdrift diff exited {proc.returncode}: {proc.stderr[-2000:]!r}")
        summary = proc.stdout.decode().strip().splitlines()[-1]
        if not summary.startswith(f"{expected.total:,} differences"):
            raise SystemExit(f"zkdrift diff summary: {summary!r}, expected {expected.total}")

        with timed() as cli_startup:
            subprocess.run(
                [sys.executable, "-c", "from zkdrift.cli import main; main()", "--help"],
                env=env,
                capture_output=True,
                check=True,
            )
        peer_startup = time_zkshell_startup(hosts)
        peer = time_zkshell_diff(hosts, LIVE, COPY, expected)
        if args.hosts:
            with kazoo_client(hosts) as client:
                delete_tree(client, ROOT)

    n = len(live_nodes) + 1
    label = f"diff {n:,} znodes ({expected.total:,} differences)"
    steady_median = statistics.median(steady)
    rows.append(
        Row(
            f"{label}: check_drift, steady state",
            steady_median,
            peer,
            f"median of {STEADY_RUNS}: " + ", ".join(f"{s:.2f}" for s in steady),
        )
    )
    rows.append(
        Row(f"{label}: check_drift, first snapshot", first.seconds, peer, "snapshot writes all")
    )
    rows.append(Row(f"{label}: CLI 'zkdrift diff'", cli.seconds, peer, "subprocess, text output"))
    rows.append(
        Row("start-up: 'zkdrift --help' vs zk-shell 'ls /'", cli_startup.seconds, peer_startup)
    )
    report(
        rows,
        args.json,
        meta={
            "nodes": n,
            "differences": expected.total,
            "database": "sqlite" if args.db is None else args.db.split(":", 1)[0],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
