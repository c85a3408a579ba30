"""``zkdrift db check``: a sound history passes, and each kind of damage is named."""

from __future__ import annotations

import json

from kazoo.client import KazooClient
from sqlalchemy import delete, insert, select, update

from tests.support.cli import run_cli
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.snapshot import take_snapshot
from zkdrift.store.models import Blob, NodeState, Snapshot
from zkdrift.trees import TreeSpec, add_tree


def test_db_check_passes_a_sound_history_and_names_each_kind_of_damage(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/app": b"", "/app/a": b"1", "/app/b": b"2"})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"))
    take_snapshot(app, "app")
    zk.set("/app/a", b"one")
    take_snapshot(app, "app")

    sound = run_cli("db", "check", env=cli_env)

    assert sound.exit_code == 0, sound.stderr
    assert "no problems found" in sound.stdout
    with app.db.session() as session:
        row = session.execute(
            select(NodeState).where(NodeState.path == "/app/b", NodeState.valid_to.is_(None))
        ).scalar_one()
        copy = {c.name: getattr(row, c.name) for c in NodeState.__table__.columns if c.name != "id"}
        session.execute(insert(NodeState), [copy])  # a second open row for /app/b
        session.execute(update(Snapshot).where(Snapshot.id == row.valid_from).values(node_count=99))
        # /app/a's value in its row, cut short of the length recorded with it
        session.execute(
            update(NodeState)
            .where(NodeState.path == "/app/a", NodeState.valid_to.is_(None))
            .values(data=b"on")
        )
    damaged = run_cli("db", "check", "--json", env=cli_env)

    assert damaged.exit_code == 1
    problems = json.loads(damaged.stdout)["problems"]
    messages = {
        p["check"]: [q["message"] for q in problems if q["check"] == p["check"]] for p in problems
    }
    assert any("/app/b" in m for m in messages["open rows"])
    assert any("recorded 99 nodes" in m for m in messages["rebuild"])
    assert any("1 snapshot rows" in m and "/app/a" in m for m in messages["values"])
    assert {p["tree"] for p in problems} == {"app"}


def test_db_check_names_values_that_are_not_stored(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    lonely = b"lonely value " * 100  # larger than INLINE_MAX: stored in blobs
    create_tree(zk, {"/app": b"", "/app/a": lonely})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"))
    take_snapshot(app, "app")
    with app.db.engine.begin() as conn:
        if app.db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        conn.execute(delete(Blob).where(Blob.size == len(lonely)))

    result = run_cli("db", "check", env=cli_env)

    assert result.exit_code == 1
    assert "refer to values that are not stored" in result.stderr
