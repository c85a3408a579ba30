"""Two writers at once never corrupt a tree's history: concurrent snapshots with churn,
two trees storing the same new value, concurrent desired revisions. On SQLite, MariaDB
and PostgreSQL; ``zkdrift db check`` runs after every scenario."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from kazoo.client import KazooClient

from tests.support.db import make_app, truncate
from tests.support.zk import create_tree, live_values
from zkdrift.app import App
from zkdrift.desired import desired_log, export_desired, set_value
from zkdrift.snapshot import load_snapshot, take_snapshot
from zkdrift.store.check import check_database
from zkdrift.store.engine import Database
from zkdrift.trees import TreeSpec, add_tree

T = TypeVar("T")
ROUNDS = 10
BASE = {"/t": b""} | {f"/t/k{i:02d}": f"v{i}".encode() for i in range(40)}


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        yield str(request.getfixturevalue("sqlite_url"))
        return
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres_url"))
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
        return
    url = str(request.getfixturevalue("mariadb_url"))  # the run's database, emptied
    truncate(url)
    yield url
    truncate(url)


@pytest.fixture
def apps(store_url: str, tmp_path: Path) -> Iterator[tuple[App, App]]:
    """Two applications on the same database, as two processes would be."""
    one, two = make_app(store_url, tmp_path / "one"), make_app(store_url, tmp_path / "two")
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run ``calls`` in threads released together; their results, or the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException] = [RuntimeError("did not run")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def assert_sound(app: App) -> None:
    with app.db.session() as session:
        assert [p.message for p in check_database(session)] == []


def churn(zk: KazooClient, round_: int) -> None:
    """Sets that rewrite the same bytes, a create whose value exists, deletes."""
    zk.set("/t/k00", b"v0")  # same bytes, new version
    zk.set(f"/t/k{1 + round_ % 30:02d}", f"round {round_}".encode())
    zk.create(f"/t/new{round_}", b"v5")  # a value already stored
    if zk.exists(f"/t/new{round_ - 2}"):
        zk.delete(f"/t/new{round_ - 2}")
    if round_ % 3 == 0 and zk.exists(f"/t/k{39 - round_:02d}"):
        zk.delete(f"/t/k{39 - round_:02d}")


def test_two_snapshots_at_once_with_churn_keep_one_open_row_per_path(
    apps: tuple[App, App], zk: KazooClient, zk_chroot: str
) -> None:
    one, two = apps
    create_tree(zk, BASE)
    add_tree(one, TreeSpec(name="t", hosts=zk_chroot, root="/t"))
    take_snapshot(one, "t")

    for round_ in range(ROUNDS):
        churn(zk, round_)
        at_once(partial(take_snapshot, one, "t"), partial(take_snapshot, two, "t"))

        assert_sound(one)
        latest = load_snapshot(one, "t")
        assert {p: n.data for p, n in latest.state.nodes.items()} == live_values(zk, "/t")
    again = take_snapshot(one, "t")
    assert again.changed == 0  # identical live state: no change recorded


def test_two_trees_storing_the_same_new_value_at_once_both_succeed(
    apps: tuple[App, App], zk: KazooClient, zk_chroot: str
) -> None:
    one, two = apps
    for root in ("/left", "/right"):
        create_tree(zk, {root: b""})
    add_tree(one, TreeSpec(name="left", hosts=zk_chroot, root="/left"))
    add_tree(one, TreeSpec(name="right", hosts=zk_chroot, root="/right"))
    take_snapshot(one, "left")
    take_snapshot(one, "right")

    for round_ in range(ROUNDS):
        shared = f"the same new value, round {round_}".encode() * 20
        for root in ("/left", "/right"):
            zk.create(f"{root}/v{round_}", shared)
        left, right = at_once(
            lambda: take_snapshot(one, "left"), lambda: take_snapshot(two, "right")
        )
        assert left.added == right.added == 1

    assert_sound(one)


def test_two_desired_revisions_at_once_both_land_in_order(
    apps: tuple[App, App], zk: KazooClient, zk_chroot: str
) -> None:
    one, two = apps
    create_tree(zk, BASE)
    add_tree(one, TreeSpec(name="t", hosts=zk_chroot, root="/t"))

    for round_ in range(ROUNDS):
        results = at_once(
            partial(set_value, one, "t", "/t/a", f"a{round_}".encode()),
            partial(set_value, two, "t", "/t/b", f"b{round_}".encode()),
        )
        assert all(r is not None for r in results)

    assert_sound(one)
    assert [r.revision for r in desired_log(one, "t")] == list(range(2 * ROUNDS, 0, -1))
    final = export_desired(one, "t").state
    assert final["/t/a"].data == f"a{ROUNDS - 1}".encode()
    assert final["/t/b"].data == f"b{ROUNDS - 1}".encode()
