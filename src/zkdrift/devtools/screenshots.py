"""Screenshots of the HTML report, the way people see it: ``scripts/screenshots``.

Builds a history for the example tree (:mod:`.examples`) against a real
ZooKeeper, through the same calls the CLI makes: the tree adopted as its
desired state, a hand edit found and reverted by an apply, a desired change
rolled out, then the demo's hand edits (:func:`.demo.introduce_drift`) and a
desired change that conflicts with one of them, left open. A second tree,
registered but never given a desired state, is observed only. Each report is
rendered with :func:`~zkdrift.reports.render.render_report` and captured
full-page in headless Chromium (:mod:`.browser`).

Everything happens within seconds; with ``spread`` (the script's default, 3
days) the recorded times are then moved back so the steps read as days of
history, as they would in a real installation: each step's rows keep their
order and their offsets within the step. The data are otherwise untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kazoo.client import KazooClient
from sqlalchemy import Engine, select, update

from zkdrift import desired as desired_lib
from zkdrift.app import App
from zkdrift.devtools.browser import png_size, screenshot
from zkdrift.devtools.demo import introduce_drift
from zkdrift.devtools.examples import example_tree, seed
from zkdrift.devtools.zkserver import ZooKeeperServer, free_port
from zkdrift.drift import check_drift
from zkdrift.reconcile import adopt, apply_tree
from zkdrift.reports.render import render_report
from zkdrift.settings import Settings
from zkdrift.snapshot import take_snapshot
from zkdrift.store.models import Apply, DesiredRevision, DriftRun, PlanRecord, Snapshot, utcnow
from zkdrift.trees import TreeSpec, add_tree

TREE = "demo"
ROOT = "/zkdrift-demo"
OBSERVED = "observed"
OBSERVED_ROOT = "/zkdrift-observed"

# (what happens, hours before the end) for each step of the demo history.
_STEP_HOURS = (74.0, 71.0, 66.5, 62.0, 49.0, 47.5, 30.0, 9.0, 6.5, 3.0, 1.25, 0.2)


@dataclass(frozen=True)
class Shot:
    tree: str
    html: Path
    png: Path
    width: int
    height: int


def _steps(app: App, client: KazooClient, hosts: str) -> list[Callable[[], object]]:
    """The demo history, one callable per step (run in order)."""
    replicas = f"{ROOT}/checkout/prod/replicas"
    flags = f"{ROOT}/billing/prod/feature_flags"
    log_level = f"{ROOT}/billing/prod/log_level"

    def start() -> None:
        seed(client, example_tree(ROOT), overwrite=True)
        hotfix = f"{ROOT}/search/prod/hotfix"
        if client.exists(hotfix):
            client.delete(hotfix)
        add_tree(app, TreeSpec(name=TREE, hosts=hosts, root=ROOT), check=False)
        adopt(app, TREE, actor="alice", message="take the example tree under management")
        check_drift(app, TREE, source="flow")

    def hand_edit() -> None:
        client.set(replicas, b"8")
        check_drift(app, TREE, source="flow")

    def revert() -> None:
        apply_tree(app, TREE, yes=True, actor="bob", reason="INC-4711: checkout replicas back to 6")
        check_drift(app, TREE, source="flow")

    def desired_change() -> None:
        flags_value = json.dumps({"new_ui": False, "rate_limit": 800}).encode()
        desired_lib.set_value(
            app, TREE, flags, flags_value, author="carol", message="raise billing rate limit"
        )
        check_drift(app, TREE, source="flow")

    def roll_out() -> None:
        apply_tree(app, TREE, yes=True, actor="carol", reason="roll out the billing rate limit")
        check_drift(app, TREE, source="flow")

    def check() -> None:
        check_drift(app, TREE, source="flow")

    def drift() -> None:
        introduce_drift(hosts)
        check_drift(app, TREE, source="flow")

    def conflicting_change() -> None:
        desired_lib.set_value(
            app, TREE, log_level, b"WARN", author="dave", message="quieter billing logs"
        )
        check_drift(app, TREE, source="flow")

    def snapshot() -> None:
        take_snapshot(app, TREE, source="flow")

    return [
        start,
        check,
        hand_edit,
        check,
        revert,
        desired_change,
        roll_out,
        drift,
        check,
        conflicting_change,
        check,
        snapshot,
    ]


def _observed_steps(app: App, client: KazooClient, hosts: str) -> list[Callable[[], object]]:
    """A tree nobody gave a desired state: snapshots only, with a change or two."""
    nodes = {
        OBSERVED_ROOT: b"",
        f"{OBSERVED_ROOT}/kafka": b"",
        f"{OBSERVED_ROOT}/kafka/retention_hours": b"168",
        f"{OBSERVED_ROOT}/kafka/brokers": b"3",
        f"{OBSERVED_ROOT}/solr": b"",
        f"{OBSERVED_ROOT}/solr/shards": b"4",
    }

    def start() -> None:
        seed(client, nodes, overwrite=True)
        add_tree(app, TreeSpec(name=OBSERVED, hosts=hosts, root=OBSERVED_ROOT), check=False)
        take_snapshot(app, OBSERVED, source="flow")

    def grow() -> None:
        client.set(f"{OBSERVED_ROOT}/kafka/retention_hours", b"72")
        client.ensure_path(f"{OBSERVED_ROOT}/solr/replicas")
        client.set(f"{OBSERVED_ROOT}/solr/replicas", b"2")
        take_snapshot(app, OBSERVED, source="flow")

    def snapshot() -> None:
        take_snapshot(app, OBSERVED, source="flow")

    return [start, snapshot, grow, snapshot]


_STAMPED: tuple[tuple[type, tuple[str, ...]], ...] = (
    (Snapshot, ("started_at", "finished_at")),
    (DriftRun, ("started_at", "finished_at")),
    (Apply, ("started_at", "finished_at")),
    (DesiredRevision, ("created_at",)),
    (PlanRecord, ("created_at",)),
)


def spread_history(
    engine: Engine, bounds: Sequence[dt.datetime], targets: Sequence[dt.datetime]
) -> None:
    """Move what step ``k`` recorded (from ``bounds[k]`` to ``bounds[k + 1]``) to begin
    at ``targets[k]``: seconds of activity read as days. Order within a step is kept."""
    steps = list(zip(bounds, bounds[1:], targets, strict=False))
    with engine.begin() as conn:
        for model, columns in _STAMPED:
            table = model.__table__  # type: ignore[attr-defined]
            rows = conn.execute(select(table.c.id, *(table.c[c] for c in columns))).all()
            for row in rows:
                moved = {}
                for column, value in zip(columns, row[1:], strict=True):
                    for start, end, target in steps:
                        if value is not None and start <= value < end:
                            moved[column] = target + (value - start)
                if moved:
                    conn.execute(update(table).where(table.c.id == row[0]).values(moved))


def _run(steps: Sequence[Callable[[], object]]) -> list[dt.datetime]:
    """Run ``steps``; the time each started, and when the last one ended."""
    bounds = []
    for step in steps:
        bounds.append(utcnow())
        step()
    bounds.append(utcnow())
    return bounds


def build_history(
    app: App, hosts: str, *, spread: dt.timedelta | None = None
) -> dict[str, list[dt.datetime]]:
    """Record the demo history of tree ``demo`` and the observed-only tree ``observed``
    on the ZooKeeper at ``hosts``; with ``spread``, spread it over that much time.
    Returns the bounds of each tree's steps as recorded."""
    client = KazooClient(hosts=hosts)
    client.start(timeout=15)
    try:
        bounds = {
            TREE: _run(_steps(app, client, hosts)),
            OBSERVED: _run(_observed_steps(app, client, hosts)),
        }
    finally:
        client.stop()
        client.close()
    if spread is not None:
        end = utcnow()
        scale = spread.total_seconds() / 3600 / _STEP_HOURS[0]

        def ago(hours: Sequence[float]) -> list[dt.datetime]:
            return [end - dt.timedelta(hours=h * scale) for h in hours]

        spread_history(app.db.engine, bounds[TREE], ago(_STEP_HOURS))
        spread_history(app.db.engine, bounds[OBSERVED], ago((70.0, 40.0, 20.0, 0.5)))
    return bounds


def render_and_shoot(app: App, tree: str, out: Path, *, width: int = 1400) -> Shot:
    html = render_report(app, tree, output=out / f"{tree}.html")
    png = screenshot(html, out / f"{tree}.png", width=width)
    w, h = png_size(png)
    return Shot(tree, html, png, w, h)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=Path(".zkdrift/screenshots"), help="where to write"
    )
    parser.add_argument("--width", type=int, default=1400, help="page width in CSS pixels")
    parser.add_argument(
        "--spread-days",
        type=float,
        default=3.0,
        help="spread the demo history over this many days (0: as recorded, seconds)",
    )
    args = parser.parse_args(argv)
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zkdrift-screenshots-") as scratch:
        home = Path(scratch)
        server = ZooKeeperServer(home / "zookeeper", free_port(), test_mode=True).start()
        app = App(Settings(home=home, database_url=None))
        try:
            spread = dt.timedelta(days=args.spread_days) if args.spread_days > 0 else None
            build_history(app, server.connect_string, spread=spread)
            shots = [
                render_and_shoot(app, tree, out, width=args.width) for tree in (TREE, OBSERVED)
            ]
        finally:
            app.close()
            server.stop()
    for shot in shots:
        print(f"{shot.tree}: {shot.png} ({shot.width}x{shot.height}), page {shot.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
