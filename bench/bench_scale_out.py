"""Scale, database -> out: drift check, plan, export, desired import and report of a
recorded tree of ``--nodes`` leaves (default 1,000,000: 1,012,001 znodes).

The tree is recorded straight into the store, streamed (``tests.support.scale``, the
seeding the memory tests use): a snapshot of ``/big/svc-N/ENV/key-K`` (2,000
services x 5 environments x 100 keys at 1M) and a desired revision ``--changes``
away from it (a third modified, a third added, a third removed). No ZooKeeper is
involved: each step is the half that starts from the database. Capture has its own
benchmark (``bench/bench_scale.py``).

Each step runs as a subprocess of its own, reporting its wall time, its CPU time
(user + system: what a shared machine's load does not inflate) and its own peak RSS
(``wait4``):

- drift check: ``zkdrift diff big --snapshot ID`` (the recorded snapshot as live);
- plan: the library call ``zkdrift plan`` makes once live is recorded, planning the
  ``--changes`` changes from the recorded snapshot, with its guards, persisted;
- export: ``zkdrift export big -o FILE``;
- desired import: ``zkdrift desired import big FILE`` of that export (``--changes``
  changes back);
- report: ``zkdrift report big -o FILE`` (drift and history notebooks).

``--before PATH`` runs the same steps with another checkout's ``src`` first on the
``PYTHONPATH`` (e.g. ``/work/main``), side by side. ``--profile DIR`` writes a
cProfile of each step.

    python -m bench.bench_scale_out [--nodes 1000000] [--changes 10000] [--before /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("drift check", "plan", "export", "desired import", "report")


@dataclass
class Result:
    code: str
    step: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    exit_code: int


def _plan_step(tree_name: str) -> None:
    """The plan step, run inside the measured subprocess (``--step plan``)."""
    from zkdrift.app import App
    from zkdrift.reconcile import planning
    from zkdrift.settings import Settings
    from zkdrift.store import snapshots as snapshot_store

    app = App(Settings())
    tree = planning.load_tree(app, tree_name)
    with app.db.session() as session:
        snapshot_id = snapshot_store.get_snapshot(session, tree).id
    if hasattr(planning, "compute_recorded"):
        revision = planning.current_revision(app, tree)
        plan, inputs = planning.compute_recorded(app, tree, revision, snapshot_id, prune=True)
        refusals = planning.recorded_guards(app, tree, plan, inputs, force=True)
    else:  # a checkout from before plans streamed: the whole trees, as plan_with held them
        with app.db.session() as session:
            snap = snapshot_store.get_snapshot(session, tree, snapshot_id)
            live = snapshot_store.load_snapshot(session, tree, snap)
        revision = planning.load_desired(app, tree)
        plan = planning.compute(app, tree, revision.state, live, prune=True)
        refusals = planning.guards(app, tree, plan, revision.state, live, force=True)
    plan_id = planning.persist(
        app, tree, plan, revision, snapshot_id=snapshot_id, prune=True, actor="bench"
    )
    print(json.dumps({"plan_id": plan_id, "ops": len(plan.ops), "refusals": refusals}))


def _run(
    args: list[str], env: dict[str, str], profile: Path | None, label: str
) -> tuple[float, float, float, int, bytes]:
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile / f"{label}.prof")]
    command += args
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        err.seek(0)
        message = err.read()[-2000:]
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), message


def measure(
    code: str,
    src: Path,
    home: Path,
    db_url: str,
    work: Path,
    profile: Path | None,
    steps: tuple[str, ...] = STEPS,
) -> list[Result]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{src}:{ROOT}",
        "ZKDRIFT_HOME": str(home),
        "ZKDRIFT_DATABASE_URL": db_url,
    }
    export = work / f"export-{code}.json"
    commands = {
        "drift check": ["-m", "zkdrift", "diff", "big", "--snapshot", "1"],
        "plan": ["-m", "bench.bench_scale_out", "--step", "plan"],
        "export": ["-m", "zkdrift", "export", "big", "-o", str(export)],
        "desired import": ["-m", "zkdrift", "desired", "import", "big", str(export), "-m", "b"],
        "report": ["-m", "zkdrift", "report", "big", "-o", str(work / f"report-{code}.html")],
    }
    results = []
    for step in steps:
        label = f"{code}-{step.replace(' ', '-')}"
        seconds, cpu, rss, exit_code, err = _run(commands[step], env, profile, label)
        if exit_code not in (0, 2):  # diff exits 2 when it finds differences
            print(f"{code} {step} failed ({exit_code}): {err.decode(errors='replace')}")
        results.append(
            Result(code, step, round(seconds, 2), round(cpu, 2), round(rss, 1), exit_code)
        )
        print(
            f"{code:>8} {step:<15} {seconds:8.2f} s wall {cpu:8.2f} s CPU {rss:9.1f} MB",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000, help="leaves (default 1M)")
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--before", type=Path, help="another checkout to measure first")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each step here")
    parser.add_argument("--work", type=Path, help="keep the databases and files here")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument(
        "--seeded",
        type=Path,
        help="measure this ZKDRIFT_HOME's zkdrift.sqlite as seeded before (no --before)",
    )
    parser.add_argument(
        "--only", action="append", choices=STEPS, help="measure only these steps (repeatable)"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "plan":
        _plan_step("big")
        return

    from tests.support.db import make_app
    from tests.support.scale import seed

    work = args.work or Path(tempfile.mkdtemp(prefix="zkdrift-bench-scale-out-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    keys = 100 if args.nodes >= 100_000 else 20
    contenders = [("after", ROOT / "src")]
    if args.before:
        contenders.insert(0, ("before", args.before / "src"))
    results: list[Result] = []
    if args.seeded:
        home = args.seeded.resolve()
        db_url = f"sqlite:///{home / 'zkdrift.sqlite'}"
        steps = tuple(args.only or STEPS)
        results = measure("after", ROOT / "src", home, db_url, work, args.profile, steps)
        contenders = contenders[-1:]
    for code, src in [] if args.seeded else contenders:
        home = work / code
        home.mkdir(exist_ok=True)
        db_url = f"sqlite:///{home / 'zkdrift.sqlite'}"
        app = make_app(db_url, home)
        t0 = time.perf_counter()
        seeded = seed(app, "big", args.nodes, args.changes, keys_per_env=keys)
        app.db.dispose()
        size = (home / "zkdrift.sqlite").stat().st_size
        print(
            f"{code:>8} seeded {seeded.nodes:,} znodes and {args.changes:,} changes in"
            f" {time.perf_counter() - t0:.1f} s ({size:,} bytes)",
            flush=True,
        )
        results += measure(code, src, home, db_url, work, args.profile)
    print()
    print(f"{'step':<15}" + "".join(f"{c:>24}" for c, _ in contenders))
    for step in dict.fromkeys(r.step for r in results):
        cells = [r for r in results if r.step == step]
        print(
            f"{step:<15}" + "".join(f"{r.seconds:>10.2f} s {r.peak_rss_mb:>8.1f} MB" for r in cells)
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
