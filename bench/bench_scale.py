"""A million znodes: wall time and peak memory of every zkdrift step, side by side with
two readers of the official Java client and (at 100k nodes or fewer) zk-shell.

The tree is ``/bench-scale-N/svc-NNNN/env-N/key-NNN``: services x 5 environments x
100 keys, about 77 bytes of value per leaf (one leaf in 400 is binary, not UTF-8);
``--nodes 1000000`` gives 2,000 services, 1,012,001 znodes. Made once with multi
transactions and reused while its shape matches (``--hosts`` names a ZooKeeper of
your own to keep it between runs).

Each zkdrift step is a ``zkdrift`` process, timed, its peak RSS read with
``wait4``: the first snapshot, an unchanged re-snapshot, ``desired adopt`` of the
first snapshot, a re-snapshot after 10,000 changes, a drift check (``diff``), a
plan, a report, and the database size per node. The read phase alone is a
process that reads the tree the way a snapshot does and stores nothing. The Java
readers (``bench/java``, compiled here with Debian's ``javac`` against Debian's
ZooKeeper jars) read the same tree: ``multi()`` of read ops in batches of 500,
level by level, and one asynchronous request per node.

    python -m bench.bench_scale [--nodes 1000000] [--database sqlite|mariadb|both]
        [--hosts HOST:PORT] [--mariadb URL] [--no-java] [--unchanged-runs N]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from sqlalchemy import text
from tests.support.zk import load_nodes

from bench.common import kazoo_client, timed
from bench.peer import zkshell_cp_json
from zkdrift.devtools.zkserver import ZooKeeperServer, free_port
from zkdrift.store.engine import Database, make_engine

ENVIRONMENTS = 5
KEYS = 100
PER_SERVICE = 1 + ENVIRONMENTS * (1 + KEYS)
CHANGES = 10_000
JAVA_DIR = Path(__file__).resolve().parent / "java"
ZK_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar")
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
ZKSHELL_MAX_NODES = 200_000  # zk-shell takes over ten minutes at 1M
SEED = 20261201


def services_for(nodes: int) -> int:
    return max(1, round(nodes / 500))


def node_count(services: int) -> int:
    return 1 + services * PER_SERVICE


def tree_nodes(root: str, services: int) -> Iterator[tuple[str, bytes]]:
    """The tree, parents first; values derived from SEED, so every run makes the same."""
    rng = random.Random(SEED)
    for s in range(services):
        service = f"{root}/svc-{s:04d}"
        yield service, f'{{"service":"svc-{s:04d}","tier":{s % 4}}}'.encode()
        for e in range(ENVIRONMENTS):
            env = f"{service}/env-{e}"
            yield env, f'{{"environment":"env-{e}"}}'.encode()
            for k in range(KEYS):
                if rng.randrange(400) == 0:
                    yield f"{env}/key-{k:03d}", bytes(rng.getrandbits(8) for _ in range(64))
                    continue
                pad = "x" * rng.randrange(10, 60)
                value = f'{{"key":"k{k:03d}","rev":{rng.randrange(5000)},"pad":"{pad}"}}'
                yield f"{env}/key-{k:03d}", value.encode()


def ensure_tree(client: KazooClient, root: str, services: int) -> int:
    """Make the tree under ``root`` unless it is there already; its znode count."""
    marker = f"zkdrift bench_scale services={services} seed={SEED}".encode()
    stat = client.exists(root)
    if stat is not None:
        data, stat = client.get(root)
        if data == marker and stat.numChildren == services:
            return node_count(services)
        print(f"removing the old {root} ...", flush=True)
        client.delete(root, recursive=True)
    print(f"creating {node_count(services):,} znodes under {root} ...", flush=True)
    with timed() as t:
        client.create(root, marker)
        load_nodes(client, tree_nodes(root, services))
    print(f"  made in {t.seconds:.1f}s", flush=True)
    return node_count(services)


def change_leaves(client: KazooClient, root: str, services: int, count: int, round_: int) -> None:
    """Set ``count`` leaves, spread over the tree, to new values, in transactions."""
    leaves = services * ENVIRONMENTS * KEYS
    step = max(1, leaves // count)
    pending = []
    txn = client.transaction()
    for n, i in enumerate(range(0, leaves, step)):
        if n >= count:
            break
        s, rest = divmod(i, ENVIRONMENTS * KEYS)
        e, k = divmod(rest, KEYS)
        txn.set_data(f"{root}/svc-{s:04d}/env-{e}/key-{k:03d}", f"changed {round_} {i}".encode())
        if (n + 1) % 500 == 0:
            pending.append(txn.commit_async())
            txn = client.transaction()
    pending.append(txn.commit_async())
    for result in pending:
        failed = [r for r in result.get(timeout=120) if isinstance(r, Exception)]
        if failed:
            raise SystemExit(f"changing leaves failed: {failed[0]!r}")


@dataclass
class Step:
    """One measured process: wall seconds, peak RSS, and what it printed."""

    name: str
    seconds: float
    peak_mib: float
    exit_code: int
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")


class Steps(list[Step]):
    """The results so far, each printed as it is added: a long run shows its progress."""

    def append(self, step: Step) -> None:
        super().append(step)
        print(format_steps([step], header=False), flush=True)


TIME = "/usr/bin/time"  # GNU time: the peak RSS of exactly the step's process
STEP_TIMEOUT = 1800.0  # seconds; a step that takes longer is stopped and reported


def measure(name: str, argv: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,)) -> Step:
    """Run ``argv``; its wall time and peak RSS. A step still running after
    :data:`STEP_TIMEOUT` is killed and reported with exit -9.

    The peak RSS is the one ``/usr/bin/time`` reports for the step: ``wait4`` on a
    child of this process would count this process's own pages, which the child
    shares until it execs (vfork), whenever this process is the larger.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        start = time.perf_counter()
        command = [TIME, "-q", "-f", "%M", "-o", peak.name, *argv]
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        timer = threading.Timer(STEP_TIMEOUT, proc.kill)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        kib = next((int(line) for line in peak.read().split() if line.isdigit()), 0)
        step = Step(
            name,
            seconds,
            kib / 1024,
            code,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    if code == -9:
        step.name += f" (stopped after {STEP_TIMEOUT:.0f}s)"
        return step
    if code not in ok:
        raise SystemExit(
            f"{name} failed (exit {code}):\n{step.stdout[-2000:]}{step.stderr[-2000:]}"
        )
    return step


def compile_java(build: Path) -> str:
    """Compile bench/java into ``build``; the classpath that runs it."""
    classpath = ":".join(ZK_JARS)
    sources = sorted(str(p) for p in JAVA_DIR.glob("*.java"))
    subprocess.run(
        ["javac", "-nowarn", "-cp", classpath, "-d", str(build), *sources],
        check=True,
        capture_output=True,
    )
    return f"{build}:{classpath}"


def java_step(name: str, main: str, classpath: str, hosts: str, root: str, nodes: int) -> Step:
    step = measure(name, ["java", "-cp", classpath, main, hosts, root], dict(os.environ))
    fields = dict(part.split("=") for part in step.stdout.split())
    if int(fields["nodes"]) != nodes:
        raise SystemExit(f"{name} read {fields['nodes']} znodes, expected {nodes}")
    step.seconds = float(fields["seconds"])  # the read alone, JVM start-up left out
    return step


READ_ONLY = """
import sys, time
from kazoo.client import KazooClient
from zkdrift.zk.reader import TreeStream
client = KazooClient(hosts=sys.argv[1], timeout=30)
client.start(timeout=30)
t0 = time.perf_counter()
count = sum(len(batch) for batch in TreeStream(client, sys.argv[2]))
print(count, time.perf_counter() - t0)
client.stop()
"""


def zkdrift_env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(ZKDRIFT_DATABASE_URL=url, ZKDRIFT_HOME=str(home), ZKDRIFT_AUTHOR="bench")
    return env


def zkdrift(*args: str) -> list[str]:
    return [sys.executable, "-m", "zkdrift", *args]


def database_bytes(url: str) -> int:
    """Bytes the database holds: the SQLite file (checkpointed), or MariaDB's tables."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
                return int(
                    conn.execute(text("PRAGMA page_count")).scalar_one()
                    * conn.execute(text("PRAGMA page_size")).scalar_one()
                )
            tables = [r[0] for r in conn.execute(text("SHOW TABLES"))]
            for table in tables:
                conn.execute(text(f"ANALYZE TABLE {table}"))
            return int(
                conn.execute(
                    text(
                        "SELECT SUM(data_length + index_length) FROM information_schema.tables"
                        " WHERE table_schema = DATABASE()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def run_database(
    label: str,
    url: str,
    home: Path,
    hosts: str,
    root: str,
    services: int,
    nodes: int,
    round_: int,
    repeat: int = 0,
    capture_only: bool = False,
) -> list[Step]:
    env = zkdrift_env(url, home)
    Database(url).upgrade()
    measure("tree add", zkdrift("tree", "add", "bench", "--hosts", hosts, "--root", root), env)
    steps = Steps()

    first = measure(f"{label}: first snapshot", zkdrift("snapshot", "bench", "--json"), env)
    captured = json.loads(first.stdout)
    if captured["nodes"] != nodes:
        raise SystemExit(f"the snapshot holds {captured['nodes']} znodes, expected {nodes}")
    first.name += f" (read {captured['read_seconds']:.1f}s, write {captured['write_seconds']:.1f}s)"
    steps.append(first)
    size = database_bytes(url)
    steps.append(
        Step(
            f"{label}: database after it, {size / 1e6:,.0f} MB, {size / nodes:.0f} bytes/node",
            0,
            0,
            0,
        )
    )

    if repeat:
        before = database_bytes(url)
        for _ in range(repeat):
            measure("unchanged", zkdrift("snapshot", "bench"), env)
        grown = database_bytes(url) - before
        steps.append(
            Step(
                f"{label}: {repeat} unchanged snapshots grew the database"
                f" {grown:,} bytes ({100 * grown / before:.3f}%)",
                0,
                0,
                0,
            )
        )
    again = measure(f"{label}: unchanged re-snapshot", zkdrift("snapshot", "bench", "--json"), env)
    if json.loads(again.stdout)["changed"]:
        raise SystemExit("an unchanged re-snapshot recorded changes")
    steps.append(again)

    if not capture_only:
        steps.append(
            measure(
                f"{label}: desired adopt",
                zkdrift("desired", "adopt", "bench", "--snapshot", str(captured["snapshot_id"])),
                env,
            )
        )
    changes = min(CHANGES, services * ENVIRONMENTS * KEYS // 10)  # small runs: a tenth
    with kazoo_client(hosts) as client:
        change_leaves(client, root, services, changes, round_)
    changed = measure(
        f"{label}: re-snapshot after {changes:,} changes",
        zkdrift("snapshot", "bench", "--json"),
        env,
    )
    if json.loads(changed.stdout)["modified"] != changes:
        raise SystemExit(f"the re-snapshot did not record {changes} modifications")
    steps.append(changed)
    if capture_only:
        return steps
    steps.append(measure(f"{label}: drift check (diff)", zkdrift("diff", "bench"), env, ok=(2,)))
    steps.append(measure(f"{label}: plan", zkdrift("plan", "bench"), env, ok=(2,)))
    report = home / "report.html"
    steps.append(
        measure(f"{label}: report", zkdrift("report", "bench", "-o", str(report)), env, ok=(0, 1))
    )
    size = database_bytes(url)
    steps.append(
        Step(
            f"{label}: database at the end, {size / 1e6:,.0f} MB, {size / nodes:.0f} bytes/node",
            0,
            0,
            0,
        )
    )
    return steps


def fresh_mariadb(admin_url: str) -> tuple[str, str]:
    name = f"zkdrift_bench_{uuid.uuid4().hex[:8]}"
    engine = make_engine(admin_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name, name


def drop_mariadb(admin_url: str, name: str) -> None:
    engine = make_engine(admin_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    engine.dispose()


def format_steps(steps: Sequence[Step], header: bool = True) -> str:
    width = max(60, *(len(s.name) for s in steps))
    lines = [f"{'step'.ljust(width)}  {'seconds':>8}  {'peak RSS MiB':>12}", "-" * (width + 24)]
    if not header:
        lines = []
    for s in steps:
        if s.seconds or s.peak_mib:
            lines.append(f"{s.name.ljust(width)}  {s.seconds:8.2f}  {s.peak_mib:12.0f}")
        else:
            lines.append(s.name)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1_000_000, help="about this many znodes")
    parser.add_argument("--database", choices=("sqlite", "mariadb", "both"), default="both")
    parser.add_argument("--hosts", default=None, help="a ZooKeeper of your own (tree kept)")
    parser.add_argument("--mariadb", default=MARIADB_ADMIN, help="MariaDB admin URL")
    parser.add_argument("--no-java", action="store_true", help="skip the Java readers")
    parser.add_argument(
        "--capture-only",
        action="store_true",
        help="snapshots and sizes only: no adopt, drift check, plan or report",
    )
    parser.add_argument(
        "--unchanged-runs",
        type=int,
        default=0,
        help="after the first snapshot, this many unchanged ones: how much the database grew",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)

    services = services_for(args.nodes)
    root = f"/bench-scale-{services}"
    work = Path(tempfile.mkdtemp(prefix="zkdrift-bench-scale-"))
    server = None
    try:
        hosts = args.hosts
        if not hosts:
            server = ZooKeeperServer(
                work / "zookeeper", free_port(), test_mode=True, jvm_flags=("-Xmx3g",)
            )
            server.start()
            hosts = server.connect_string
        with kazoo_client(hosts, timeout=60) as client:
            nodes = ensure_tree(client, root, services)
            round_ = int(client.get(root)[1].cversion) + int(time.time())
        steps = Steps()
        if not args.no_java:
            classpath = compile_java(work / "classes")
            steps.append(
                java_step(
                    "Java multi() reader, batches of 500",
                    "MultiReader",
                    classpath,
                    hosts,
                    root,
                    nodes,
                )
            )
            steps.append(
                java_step(
                    "Java async reader, one request per node",
                    "AsyncReader",
                    classpath,
                    hosts,
                    root,
                    nodes,
                )
            )
        read = measure(
            "zkdrift read phase alone (TreeStream, no database)",
            [sys.executable, "-c", READ_ONLY, hosts, root],
            dict(os.environ),
        )
        count, seconds = read.stdout.split()
        if int(count) != nodes:
            raise SystemExit(f"the read found {count} znodes, expected {nodes}")
        read.seconds = float(seconds)
        steps.append(read)
        databases = ("sqlite", "mariadb") if args.database == "both" else (args.database,)
        for n, database in enumerate(databases):
            home = work / f"home-{database}"
            if database == "sqlite":
                label, url, name = "SQLite", f"sqlite:///{work / 'bench.db'}", None
            else:
                label, (url, name) = "MariaDB", fresh_mariadb(args.mariadb)
            try:
                steps.extend(
                    run_database(
                        label,
                        url,
                        home,
                        hosts,
                        root,
                        services,
                        nodes,
                        round_ + n,
                        args.unchanged_runs,
                        args.capture_only,
                    )
                )
            finally:
                if name is not None:
                    drop_mariadb(args.mariadb, name)
        # Last: verifying its export reads the tree into this process.
        if nodes <= ZKSHELL_MAX_NODES:
            with timed():
                run = zkshell_cp_json(hosts, root, work / "zkshell.json")
            steps.append(Step("zk-shell cp to JSON (async)", run.seconds, 0, 0))
        print()
        print(f"{nodes:,} znodes under {root} on {hosts}")
        print(format_steps(steps))
        if args.json is not None:
            payload: dict[str, Any] = {"nodes": nodes, "steps": [asdict(s) for s in steps]}
            for step in payload["steps"]:
                step.pop("stdout")
                step.pop("stderr")
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
