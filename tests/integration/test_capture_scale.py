"""Capture streams: a ``zkdrift snapshot`` process needs no more memory for 100,000
znodes than for 25,000 (peak RSS within 20%), first capture and unchanged re-capture.

Each size is its own tree in a ZooKeeper of the module's own, made with multi
transactions, and its own SQLite database; each snapshot is a real ``zkdrift``
process whose own peak RSS is measured (see :mod:`tests.support.rss`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.db import make_app
from tests.support.rss import run_measured
from tests.support.zk import load_nodes, start_server
from zkdrift.snapshot import SnapshotInfo, list_snapshots
from zkdrift.trees import TreeSpec, add_tree

PER_SERVICE = 100


def nodes(root: str, services: int) -> Iterator[tuple[str, bytes]]:
    """``root/sNNNN/kNNN``: ``services`` x 100 leaves of about 80 distinct bytes."""
    yield root, b""
    for s in range(services):
        service = f"{root}/s{s:05d}"
        yield service, f'{{"service": {s}}}'.encode()
        for k in range(PER_SERVICE):
            yield f"{service}/k{k:03d}", f'{{"s": {s}, "k": {k}, "pad": "{"x" * 50}"}}'.encode()


def peak_rss_kib(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv``; its own peak resident set size in KiB (it must exit 0)."""
    run = run_measured(argv, env)
    assert run.exit_code == 0, (run.stdout, run.stderr)
    return run.peak_rss_kib


def registered(hosts: str, root: str, where: Path) -> dict[str, str]:
    """Register ``root`` as tree "big" in a fresh SQLite database under ``where``; the
    environment for ``zkdrift`` processes working on it."""
    url = f"sqlite:///{where / 'zkdrift.db'}"
    where.mkdir()
    app = make_app(url, where / "home")
    try:
        add_tree(app, TreeSpec(name="big", hosts=hosts, root=root))
    finally:
        app.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(ZKDRIFT_DATABASE_URL=url, ZKDRIFT_HOME=str(where / "home"))
    return env


def recorded(env: dict[str, str]) -> list[SnapshotInfo]:
    """The snapshots of tree "big" in the database ``env`` names, newest first."""
    app = make_app(env["ZKDRIFT_DATABASE_URL"], Path(env["ZKDRIFT_HOME"]))
    try:
        return list_snapshots(app, "big")
    finally:
        app.close()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[int, str]]]:
    """Two trees, 25,000 and 100,000 leaves, in a ZooKeeper of this module's own:
    stopping it is faster than deleting 125,000 znodes from the shared one."""
    server = start_server(tmp_path_factory.mktemp("zookeeper-scale"))
    try:
        client = KazooClient(hosts=server.connect_string, timeout=30)
        client.start(timeout=30)
        try:
            roots = {}
            for services in (250, 1000):
                root = f"/t{services}"
                load_nodes(client, nodes(root, services))
                roots[services * PER_SERVICE] = root
        finally:
            client.stop()
            client.close()
        yield server.connect_string, roots
    finally:
        server.kill()


def test_snapshot_memory_does_not_grow_with_the_tree(
    trees: tuple[str, dict[int, str]], tmp_path: Path
) -> None:
    hosts, roots = trees
    peaks: dict[int, list[int]] = {}
    for size, root in roots.items():
        env = registered(hosts, root, tmp_path / str(size))
        argv = [sys.executable, "-m", "zkdrift", "snapshot", "big"]
        peaks[size] = [peak_rss_kib(argv, env), peak_rss_kib(argv, env)]
        again, first = recorded(env)
        assert (first.nodes, first.added) == (size + size // PER_SERVICE + 1,) * 2
        assert (again.nodes, again.added + again.removed + again.modified) == (first.nodes, 0)

    small, large = peaks[25_000], peaks[100_000]
    assert large[0] <= small[0] * 1.2, f"first snapshot: {small[0]} KiB at 25k, {large[0]} at 100k"
    assert large[1] <= small[1] * 1.2, f"unchanged: {small[1]} KiB at 25k, {large[1]} at 100k"


def test_adopt_a_drift_check_and_a_plan_of_the_live_tree_do_not_grow_with_it(
    trees: tuple[str, dict[int, str]], tmp_path: Path
) -> None:
    # Each records a snapshot of live first: streamed, as `zkdrift snapshot` does,
    # not read whole into memory and then written. The adopts stream the changes
    # into the audit and the snapshot into the revision; the second adopts the
    # first snapshot, live equal to it.
    hosts, roots = trees
    peaks: dict[int, list[int]] = {}
    for size, root in roots.items():
        env = registered(hosts, root, tmp_path / str(size))
        adopt = [sys.executable, "-m", "zkdrift", "desired", "adopt", "big"]
        peaks[size] = [
            peak_rss_kib(adopt, env),
            peak_rss_kib([*adopt, "--snapshot", "1", "--json"], env),
            *(
                peak_rss_kib([sys.executable, "-m", "zkdrift", command, "big"], env)
                for command in ("diff", "plan")
            ),
        ]
        # each adopt, the drift check and the plan recorded what they read
        assert [s.nodes for s in recorded(env)] == [size + size // PER_SERVICE + 1] * 4

    small, large = peaks[25_000], peaks[100_000]
    for i, step in enumerate(("adopt", "adopt of a snapshot", "drift check", "plan")):
        assert large[i] <= small[i] * 1.2, f"{step}: {small[i]} KiB at 25k, {large[i]} at 100k"
