"""Capture a ~20,000-znode tree into the database, side by side with zk-shell's JSON copy.

zkdrift: ``take_snapshot`` (pipelined multiRead walk + one bulk-insert
transaction into SQLite, and into MariaDB when reachable), and the ``zkdrift
snapshot`` command as a user runs it (a subprocess, start-up included).
zk-shell: ``cp ROOT json://FILE/ true true true`` (recursive, overwrite,
asynchronous), also a subprocess.

    python -m bench.bench_capture [--mariadb URL] [--json results.json]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from bench.common import Row, arg_parser, kazoo_client, report, timed, zookeeper_hosts
from bench.peer import zkshell_cp_json
from bench.treegen import delete_tree, generate_tree, load_tree
from zkdrift.app import App
from zkdrift.settings import Settings
from zkdrift.snapshot import load_snapshot, take_snapshot
from zkdrift.store.engine import Database, make_engine
from zkdrift.trees import TreeSpec, add_tree

ROOT = "/bench-capture"


def _app(url: str, home: Path) -> App:
    return App(Settings(home=home, database_url=SecretStr(url)))


def _capture(
    url: str, home: Path, hosts: str, expected: dict[str, bytes], *, acl: bool = False
) -> tuple[float, float]:
    """Seconds for a first snapshot and for an unchanged re-snapshot; verifies the capture."""
    Database(url).upgrade()  # outside the timed region
    app = _app(url, home)
    try:
        add_tree(app, TreeSpec(name="bench", hosts=hosts, root=ROOT, capture_acl=acl), check=False)
        with timed() as first:
            result = take_snapshot(app, "bench")
        with timed() as again:
            unchanged = take_snapshot(app, "bench")
        captured = load_snapshot(app, "bench", result.snapshot_id).state
        if {p: n.data for p, n in captured.nodes.items()} != expected:
            raise SystemExit("zkdrift capture does not match the live tree")
        if unchanged.changed:
            raise SystemExit("an unchanged re-snapshot reported changes")
        return first.seconds, again.seconds
    finally:
        app.close()


def _cli_capture(url: str, home: Path, hosts: str) -> float:
    env = dict(os.environ, ZKDRIFT_DATABASE_URL=url, ZKDRIFT_HOME=str(home))
    cmd = [
        sys.executable,
        "-m",
        "zkdrift",
        "tree",
        "add",
        "bench",
        "--hosts",
        hosts,
        "--root",
        ROOT,
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    with timed() as t:
        subprocess.run(
            [sys.executable, "-m", "zkdrift", "snapshot", "bench"],
            env=env,
            check=True,
            capture_output=True,
        )
    return t.seconds


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--mariadb",
        default="mysql+pymysql://root@127.0.0.1:3306/test",
        help="server to create a throwaway database on ('' to skip)",
    )
    args = parser.parse_args(argv)
    rel = generate_tree(args.services, args.environments, args.keys, args.seed)
    expected = {ROOT: b""} | {(ROOT + p if p != "/" else ROOT): v for p, v in rel.items()}
    rows: list[Row] = []
    with zookeeper_hosts(args.hosts) as hosts, tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        with kazoo_client(hosts) as client:
            delete_tree(client, ROOT)
            load_tree(client, ROOT, rel)
        n = len(expected)
        zkshell = zkshell_cp_json(hosts, ROOT, tmpdir / "zkshell.json")

        first, again = _capture(f"sqlite:///{tmpdir / 'lib.db'}", tmpdir / "h1", hosts, expected)
        rows.append(Row(f"snapshot {n} nodes -> SQLite (library)", first, zkshell.seconds))
        rows.append(Row("re-snapshot unchanged -> SQLite (library)", again, zkshell.seconds))
        first, _ = _capture(
            f"sqlite:///{tmpdir / 'acl.db'}", tmpdir / "h4", hosts, expected, acl=True
        )
        rows.append(
            Row(
                f"snapshot {n} nodes with ACLs -> SQLite (library)",
                first,
                zkshell.seconds,
                "like for like: zk-shell cp also reads every ACL",
            )
        )
        cli = _cli_capture(f"sqlite:///{tmpdir / 'cli.db'}", tmpdir / "h2", hosts)
        rows.append(
            Row(f"zkdrift snapshot {n} nodes -> SQLite (CLI process)", cli, zkshell.seconds)
        )

        if args.mariadb:
            admin = make_engine(args.mariadb)
            name = f"zkdrift_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            try:
                url = args.mariadb.rsplit("/", 1)[0] + "/" + name
                first, again = _capture(url, tmpdir / "h3", hosts, expected)
                rows.append(Row(f"snapshot {n} nodes -> MariaDB (library)", first, zkshell.seconds))
                rows.append(
                    Row("re-snapshot unchanged -> MariaDB (library)", again, zkshell.seconds)
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                admin.dispose()
        if args.hosts:
            with kazoo_client(hosts) as client:
                delete_tree(client, ROOT)
    report(rows, args.json, meta={"nodes": len(expected), "peer": "zk-shell cp json:// async"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
