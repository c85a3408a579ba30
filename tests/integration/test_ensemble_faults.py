"""Faults on a real three-node ZooKeeper ensemble, and a database connection killed
mid-write.

Members are killed with SIGKILL while a snapshot connects or reads, and while an
apply writes (between batches or with one in flight) or reads back what it
wrote: the leader, the follower the client is connected to, two of three (no
quorum); and the client's session is ended under it. Whatever happened, these
hold afterwards:

- no partial snapshot: a recorded snapshot equals live exactly;
- whole batches only: ZooKeeper holds each transaction entirely or not at all;
- an accurate audit: the ops marked applied are exactly the ones live shows;
- a later apply converges, writing exactly what is still missing;
- no stale lock: no contender node is left under the tree's lock path;
- ``zkdrift db check`` finds nothing wrong.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.support.data import set_desired
from tests.support.db import make_app, truncate
from tests.support.ensemble import (
    Ensemble,
    client_states,
    connected_port,
    wait_for,
)
from tests.support.proxy import FaultProxy
from tests.support.zk import connected, expire_session, live_values
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.model import OpKind, OpStatus, digest
from zkdrift.reconcile import Outcome, apply_tree, audit_detail, audit_log
from zkdrift.snapshot import list_snapshots, load_snapshot, take_snapshot
from zkdrift.store.audit import OpRecord
from zkdrift.store.check import check_database
from zkdrift.store.engine import make_engine
from zkdrift.store.models import INLINE_MAX, Blob, NodeState, Snapshot
from zkdrift.store.snapshots import CAPTURE_CHUNK
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.lock import lock_path, lock_status
from zkdrift.zk.writer import BatchEvent

# ZooKeeper's opcodes: exists, getACL and multi (a transaction).
EXISTS = 3
GET_ACL = 6
MULTI = 14
# The session the tests' applies ask for: long enough to ride out an election
# or a restart, short enough that a dead session's lock goes in seconds.
SESSION_TIMEOUT = 15.0

# -- the apply tree: creates, sets and deletes, in batches of 50 --------------------

BATCH = 50
CONF = "/app/conf"
LIVE = (
    {"/app": b"", CONF: b""}
    | {f"{CONF}/s{i:03d}": b"old" for i in range(100)}
    | {f"{CONF}/d{i}": b"drop" for i in range(8)}
)
DESIRED = (
    {"/app": b"", CONF: b""}
    | {f"{CONF}/s{i:03d}": b"new" for i in range(100)}
    | {f"{CONF}/n{i:03d}": b"created" for i in range(200)}
)
OPS = 200 + 100 + 8  # creates, then sets, then deletes: seven transactions
BATCHES = -(-OPS // BATCH)

# -- the snapshot tree: four levels, a few thousand nodes ---------------------------

TREE = (
    {"/t": b""}
    | {f"/t/a{i}": b"" for i in range(10)}
    | {f"/t/a{i}/b{j}": b"" for i in range(10) for j in range(10)}
    | {
        f"/t/a{i}/b{j}/c{k:02d}": f"{i}-{j}-{k}".encode()
        for i in range(10)
        for j in range(10)
        for k in range(30)
    }
)
LEAVES = sorted(p for p in TREE if p.count("/") == 4)


# -- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def sqlite_app(sqlite_url: str, tmp_path: Path) -> Iterator[App]:
    application = make_app(sqlite_url, tmp_path / "home", zk_session_timeout=SESSION_TIMEOUT)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def mariadb_app(mariadb_url: str, tmp_path: Path) -> Iterator[App]:
    truncate(mariadb_url)
    application = make_app(mariadb_url, tmp_path / "home", zk_session_timeout=SESSION_TIMEOUT)
    try:
        yield application
    finally:
        application.close()
        truncate(mariadb_url)


@pytest.fixture
def background() -> Iterator[ThreadPoolExecutor]:
    """Threads for what must happen while the code under test blocks."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


def write_nodes(client: KazooClient, nodes: dict[str, bytes], *, create: bool) -> None:
    """Create (parents first) or set ``nodes`` in transactions of 500."""
    paths = sorted(nodes, key=lambda p: (p.count("/"), p))
    for i in range(0, len(paths), 500):
        tx = client.transaction()
        for path in paths[i : i + 500]:
            if create:
                tx.create(path, nodes[path])
            else:
                tx.set_data(path, nodes[path])
        results = tx.commit()
        assert not [r for r in results if isinstance(r, Exception)], results[:3]


def prepare_apply(app: App, ensemble: Ensemble, chroot: str, hosts: str) -> None:
    """LIVE in ZooKeeper, DESIRED as tree ``app``'s desired state; the tree on ``hosts``."""
    with connected(ensemble.hosts(chroot=chroot)) as admin:
        write_nodes(admin, LIVE, create=True)
    add_tree(app, TreeSpec(name="app", hosts=hosts, root="/app"))
    set_desired(app, DESIRED)


def apply(app: App, hook: Callable[[BatchEvent], None] | None = None, **options: Any) -> Any:
    return apply_tree(
        app, "app", yes=True, prune=True, batch_ops=BATCH, between_batches=hook, **options
    )


def live_now(ensemble: Ensemble, chroot: str, root: str = "/app") -> dict[str, bytes]:
    with connected(ensemble.hosts(chroot=chroot)) as client:
        return live_values(client, root)


def reflected(op: OpRecord, live: dict[str, bytes]) -> bool:
    """Whether ZooKeeper shows ``op`` done."""
    if op.kind == OpKind.CREATE:
        return op.path in live
    if op.kind == OpKind.SET:
        return live.get(op.path) == DESIRED[op.path]
    assert op.kind == OpKind.DELETE, op
    return op.path not in live


def audited_batches(app: App, apply_id: int, live: dict[str, bytes]) -> list[str]:
    """Check one apply against live: each batch is in ZooKeeper entirely or not at all,
    its audit records one outcome for all of its ops, and that outcome says what live
    shows (applied: there; not sent or rolled back: absent; unknown, the batch that was
    in flight: either). Returns the outcome of each batch."""
    entry, ops = audit_detail(app, "app", apply_id)
    assert len(ops) == OPS
    outcomes = []
    for start in range(0, OPS, BATCH):
        batch = ops[start : start + BATCH]
        number = start // BATCH + 1
        seen = {reflected(op, live) for op in batch}
        assert len(seen) == 1, f"batch {number} is partly in ZooKeeper"
        statuses = {op.outcome for op in batch}
        assert len(statuses) == 1, f"batch {number} is audited as {statuses}"
        status = statuses.pop()
        if status == OpStatus.APPLIED:
            assert seen == {True}, f"batch {number} is audited as applied but is not in live"
        elif status != OpStatus.UNKNOWN:
            assert seen == {False}, f"batch {number} is audited as {status} but is in live"
        outcomes.append(status)
    assert entry.ops_applied == sum(1 for op in ops if op.outcome == OpStatus.APPLIED)
    return outcomes


def missing_ops(live: dict[str, bytes]) -> int:
    """How many of the plan's ops live does not show done yet."""
    creates = sum(1 for p in DESIRED if p not in LIVE and p not in live)
    sets = sum(1 for p in LIVE if p in DESIRED and LIVE[p] != DESIRED[p] and live[p] != DESIRED[p])
    deletes = sum(1 for p in LIVE if p not in DESIRED and p in live)
    return creates + sets + deletes


def assert_stopped_in_flight_or_completed(result: Any, batches: list[str]) -> None:
    """After a fault that hit while a batch was in flight: either the connection dropped
    before its answer came (that batch unknown, those before it applied, none after it
    sent), or the answer came first and the apply rode out the rest."""
    if result.outcome == Outcome.FAILED:
        assert OpStatus.UNKNOWN in batches, result.message
        n = batches.index(OpStatus.UNKNOWN)
        assert n >= 1  # the fault came with batch 2
        assert f"batch {n + 1} of {BATCHES} was in flight" in result.message
        assert batches == [OpStatus.APPLIED] * n + [OpStatus.UNKNOWN] + [OpStatus.NOT_SENT] * (
            BATCHES - n - 1
        )
    else:
        assert result.outcome == Outcome.APPLIED, result.message
        assert batches == [OpStatus.APPLIED] * BATCHES


def assert_no_stale_lock(app: App, ensemble: Ensemble, chroot: str) -> None:
    path = lock_path(app.settings.lock_root, "app")
    with connected(ensemble.hosts(chroot=chroot)) as client:
        assert client.exists(path) is None or client.get_children(path) == []


def assert_db_sound(app: App) -> None:
    with app.db.session() as session:
        assert [p.message for p in check_database(session)] == []


def assert_converges(app: App, ensemble: Ensemble, chroot: str) -> None:
    """A later apply writes exactly what is missing and leaves live equal to desired;
    no lock node is left behind and the database is sound."""
    missing = missing_ops(live_now(ensemble, chroot))
    again = apply(app, wait=30)
    assert again.outcome == (Outcome.APPLIED if missing else Outcome.NO_OP), again.message
    assert again.ops_applied == missing
    assert live_now(ensemble, chroot) == DESIRED
    assert apply(app, wait=0).outcome == Outcome.NO_OP
    assert_no_stale_lock(app, ensemble, chroot)
    assert_db_sound(app)


def prepare_snapshot_tree(app: App, ensemble: Ensemble, chroot: str, hosts: str) -> None:
    with connected(ensemble.hosts(chroot=chroot)) as admin:
        write_nodes(admin, TREE, create=True)
    add_tree(app, TreeSpec(name="t", hosts=hosts, root="/t"))


def dropped(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the (only) kazoo client of the block logged a dropped connection."""
    return any(
        r.name == "kazoo.client" and "Connection dropped" in r.getMessage() for r in caplog.records
    )


def assert_snapshot_is_live(app: App, snapshot_id: int, live: dict[str, bytes]) -> None:
    loaded = load_snapshot(app, "t", snapshot_id)
    assert {p: n.data for p, n in loaded.state.nodes.items()} == live
    recorded = {s.id: s.nodes for s in list_snapshots(app, "t")}
    assert recorded[snapshot_id] == len(live)


# -- snapshots --------------------------------------------------------------------


def test_leader_killed_mid_snapshot_the_snapshot_completes_and_equals_live(
    zk_ensemble: Ensemble,
    ensemble_chroot: str,
    sqlite_app: App,
    caplog: pytest.LogCaptureFixture,
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_snapshot_tree(sqlite_app, zk_ensemble, ensemble_chroot, every)
    killed: list[ZooKeeperServer] = []

    def kill_the_leader(count: int) -> None:
        if count > 1 and not killed:  # two of four levels read
            leader = zk_ensemble.leader()
            zk_ensemble.kill(leader)
            killed.append(leader)
            # A new leader means every member dropped its clients meanwhile.
            zk_ensemble.wait_quorum()

    with caplog.at_level(logging.WARNING, logger="kazoo.client"):
        result = take_snapshot(sqlite_app, "t", progress=kill_the_leader)

    assert killed and zk_ensemble.leader() is not killed[0]
    assert dropped(caplog)  # the read lost its server and went on after the reconnect
    live = live_now(zk_ensemble, ensemble_chroot, "/t")
    assert len(live) == len(TREE) == result.node_count
    assert not result.fuzzy and not result.superseded
    assert_snapshot_is_live(sqlite_app, result.snapshot_id, live)
    assert [s.id for s in list_snapshots(sqlite_app, "t")] == [result.snapshot_id]
    assert_db_sound(sqlite_app)


def test_pinned_follower_killed_mid_snapshot_the_read_waits_for_it_and_equals_live(
    zk_ensemble: Ensemble,
    ensemble_chroot: str,
    sqlite_app: App,
    background: ThreadPoolExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    follower = zk_ensemble.followers()[0]
    pinned = zk_ensemble.hosts(follower, chroot=ensemble_chroot)  # its only server
    prepare_snapshot_tree(sqlite_app, zk_ensemble, ensemble_chroot, pinned)
    restarted: list[Future[None]] = []

    def kill_the_follower(count: int) -> None:
        if count > 1 and not restarted:
            zk_ensemble.kill(follower)
            # Back in a second or so; the read has nowhere else to go meanwhile.
            restarted.append(background.submit(zk_ensemble.restart, follower))

    with caplog.at_level(logging.WARNING, logger="kazoo.client"):
        result = take_snapshot(sqlite_app, "t", progress=kill_the_follower)

    assert restarted
    restarted[0].result()
    assert dropped(caplog)
    live = live_now(zk_ensemble, ensemble_chroot, "/t")
    assert len(live) == len(TREE) == result.node_count
    assert_snapshot_is_live(sqlite_app, result.snapshot_id, live)
    assert_db_sound(sqlite_app)


def test_leader_killed_while_a_snapshot_connects_the_connect_waits_for_the_new_leader(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    leader = zk_ensemble.leader()
    follower = zk_ensemble.followers()[0]
    proxy = FaultProxy(("127.0.0.1", follower.port))  # the client's only way in
    try:
        prepare_snapshot_tree(
            sqlite_app, zk_ensemble, ensemble_chroot, proxy.connect_string + ensemble_chroot
        )
        requests: list[int] = []

        def kill_the_leader(opcode: int) -> None:
            requests.append(opcode)
            # The first request of a session on a chroot checks that the chroot exists.
            if requests == [EXISTS]:
                zk_ensemble.kill(leader)
                # Held here, before it reaches the follower, until the follower went
                # through the election, dropping the new session's connection.
                zk_ensemble.wait_quorum()

        proxy.on_request = kill_the_leader
        result = take_snapshot(sqlite_app, "t")
        proxy.on_request = None

        assert not zk_ensemble.is_running(leader) and proxy.connections >= 2
        live = live_now(zk_ensemble, ensemble_chroot, "/t")
        assert len(live) == len(TREE) == result.node_count
        assert_snapshot_is_live(sqlite_app, result.snapshot_id, live)
        assert_db_sound(sqlite_app)
    finally:
        proxy.close()


def test_database_connection_killed_mid_snapshot_commits_nothing_and_the_next_is_whole(
    zk_ensemble: Ensemble,
    ensemble_chroot: str,
    mariadb_app: App,
    mariadb_url: str,
    background: ThreadPoolExecutor,
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_snapshot_tree(mariadb_app, zk_ensemble, ensemble_chroot, every)
    baseline = take_snapshot(mariadb_app, "t")
    # Values too large to sit in the node rows: each changed one becomes a blob row.
    changed = {path: f"changed {path} ".encode().ljust(INLINE_MAX + 100, b"~") for path in LEAVES}
    with connected(every) as admin:
        write_nodes(admin, changed, create=False)
    # The value of the last path is stored last: hold its row lock, so the snapshot's
    # transaction blocks late in its write, with its snapshot row inserted, the rows of
    # every changed path closed and the values of the chunks before stored, none of it
    # committed.
    last = changed[LEAVES[-1]]
    engine = make_engine(mariadb_url)
    database = make_url(mariadb_url).database
    with engine.connect() as conn:
        values = conn.execute(select(func.count()).select_from(Blob)).scalar_one()
    try:
        with engine.connect() as blocker, engine.connect() as watcher:
            blocker.execute(insert(Blob).values(digest=digest(last), size=len(last), data=last))
            watcher.execution_options(isolation_level="READ UNCOMMITTED")
            failed = background.submit(take_snapshot, mariadb_app, "t")
            waiting: list[int] = []

            def snapshot_waits() -> bool:
                waiting[:] = watcher.execute(
                    text(
                        "SELECT p.ID FROM information_schema.PROCESSLIST p"
                        " JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID"
                        " WHERE p.DB = :db AND t.trx_state = 'LOCK WAIT'"
                        " AND p.INFO LIKE 'INSERT INTO blobs%'"
                    ),
                    {"db": database},
                ).scalars()
                watcher.commit()
                return bool(waiting)

            # InnoDB refreshes INNODB_TRX only when it was not read for 0.1s: poll slower.
            wait_for(
                snapshot_waits, "the snapshot to wait on the held value", timeout=60, interval=0.25
            )
            # A dirty read shows the half-written snapshot the kill is about to end.
            half = watcher.execute(
                select(func.count()).select_from(Snapshot).where(Snapshot.id > baseline.snapshot_id)
            ).scalar_one()
            closed = watcher.execute(
                select(func.count()).select_from(NodeState).where(NodeState.valid_to.is_not(None))
            ).scalar_one()
            stored = watcher.execute(select(func.count()).select_from(Blob)).scalar_one()
            watcher.commit()
            # Values go in one statement per chunk of nodes: the first chunk's are stored.
            assert half == 1 and closed == len(LEAVES) and stored >= values + CAPTURE_CHUNK // 2
            watcher.execute(text(f"KILL CONNECTION {int(waiting[0])}"))
            blocker.rollback()

            def rolled_back() -> bool:
                # The server rolls a killed connection's transaction back, then ends it.
                gone = not watcher.execute(
                    text("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = :id"),
                    {"id": waiting[0]},
                ).all()
                watcher.commit()
                return gone

            wait_for(rolled_back, "the killed connection to be rolled back")

        # The client sees the server hang up mid-query (or, in some versions, is told why).
        with pytest.raises(OperationalError, match=r"\((2013, 'Lost connection|1927, )"):
            failed.result(timeout=60)

        with engine.connect() as conn:
            assert conn.execute(select(Snapshot.id)).scalars().all() == [baseline.snapshot_id]
            rows = conn.execute(select(NodeState.valid_from, NodeState.valid_to)).all()
            assert rows == [(baseline.snapshot_id, None)] * len(TREE)
            assert conn.execute(select(func.count()).select_from(Blob)).scalar_one() == values
    finally:
        engine.dispose()
    assert_db_sound(mariadb_app)
    assert_snapshot_is_live(mariadb_app, baseline.snapshot_id, TREE)

    after = take_snapshot(mariadb_app, "t")

    assert after.modified == len(LEAVES) and after.added == after.removed == 0
    assert_snapshot_is_live(
        mariadb_app, after.snapshot_id, live_now(zk_ensemble, ensemble_chroot, "/t")
    )
    assert [s.id for s in list_snapshots(mariadb_app, "t")] == [
        after.snapshot_id,
        baseline.snapshot_id,
    ]
    assert_db_sound(mariadb_app)


# -- applies ----------------------------------------------------------------------


def test_leader_killed_between_batches_the_apply_waits_for_the_new_leader_and_completes(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_apply(sqlite_app, zk_ensemble, ensemble_chroot, every)
    killed: list[ZooKeeperServer] = []

    def kill_the_leader(event: BatchEvent) -> None:
        if event.index == 1:
            leader = zk_ensemble.leader()
            with client_states(event.client) as states:
                zk_ensemble.kill(leader)
                killed.append(leader)
                wait_for(lambda: KazooState.SUSPENDED in states, "the client to lose its server")
            zk_ensemble.wait_quorum()

    result = apply(sqlite_app, kill_the_leader)

    assert killed and zk_ensemble.leader() is not killed[0]
    assert result.outcome == Outcome.APPLIED and result.ops_applied == OPS, result.message
    live = live_now(zk_ensemble, ensemble_chroot)
    assert audited_batches(sqlite_app, result.apply_id, live) == [OpStatus.APPLIED] * BATCHES
    assert live == DESIRED
    assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)


def test_leader_killed_with_a_batch_in_flight_leaves_whole_batches_and_a_later_apply_converges(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    leader = zk_ensemble.leader()
    follower = zk_ensemble.followers()[0]
    proxy = FaultProxy(("127.0.0.1", follower.port))  # the client's only way in
    try:
        prepare_apply(
            sqlite_app, zk_ensemble, ensemble_chroot, proxy.connect_string + ensemble_chroot
        )
        transactions: list[int] = []

        def kill_the_leader(opcode: int) -> None:
            if opcode == MULTI:
                transactions.append(opcode)
                if len(transactions) == 2:  # batch 2 just went on to the follower
                    zk_ensemble.kill(leader)

        proxy.on_forward = kill_the_leader
        result = apply(sqlite_app)
        proxy.on_forward = None

        assert len(transactions) >= 2 and not zk_ensemble.is_running(leader)
        assert result.outcome in (Outcome.FAILED, Outcome.APPLIED), result.message
        live = live_now(zk_ensemble, ensemble_chroot)
        batches = audited_batches(sqlite_app, result.apply_id, live)
        assert_stopped_in_flight_or_completed(result, batches)
        assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)
    finally:
        proxy.close()


def test_leader_killed_while_the_apply_reads_back_its_acls_the_apply_waits_and_completes(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    leader = zk_ensemble.leader()
    follower = zk_ensemble.followers()[0]
    proxy = FaultProxy(("127.0.0.1", follower.port))  # the client's only way in
    try:
        prepare_apply(
            sqlite_app, zk_ensemble, ensemble_chroot, proxy.connect_string + ensemble_chroot
        )
        requests: list[int] = []

        def kill_the_leader(opcode: int) -> None:
            requests.append(opcode)
            # Every batch committed and live read back: this getACL starts the check of
            # the created nodes' ACLs, the last step of the apply.
            if (
                opcode == GET_ACL
                and requests.count(MULTI) == BATCHES
                and zk_ensemble.is_running(leader)
            ):
                zk_ensemble.kill(leader)
                # Held here until the follower went through the election, dropping the
                # client: the getACL requests after this one never reach it.
                zk_ensemble.wait_quorum()

        proxy.on_forward = kill_the_leader
        result = apply(sqlite_app)
        proxy.on_forward = None

        assert not zk_ensemble.is_running(leader) and proxy.connections >= 2
        assert result.outcome == Outcome.APPLIED and result.ops_applied == OPS, result.message
        live = live_now(zk_ensemble, ensemble_chroot)
        assert audited_batches(sqlite_app, result.apply_id, live) == [OpStatus.APPLIED] * BATCHES
        assert live == DESIRED
        assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)
    finally:
        proxy.close()


def test_connected_follower_killed_mid_apply_the_session_moves_and_the_apply_completes(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    leader = zk_ensemble.leader()
    followers = zk_ensemble.followers()
    prepare_apply(
        sqlite_app,
        zk_ensemble,
        ensemble_chroot,
        zk_ensemble.hosts(*followers, chroot=ensemble_chroot),
    )
    killed: list[ZooKeeperServer] = []

    def kill_the_connected_follower(event: BatchEvent) -> None:
        if event.index == 1:
            member = zk_ensemble.member_on(connected_port(event.client))
            assert member in followers
            with client_states(event.client) as states:
                zk_ensemble.kill(member)
                killed.append(member)
                wait_for(
                    lambda: states[-2:] == [KazooState.SUSPENDED, KazooState.CONNECTED],
                    "the session to move to the other follower",
                )
            (other,) = (f for f in followers if f is not member)
            assert connected_port(event.client) == other.port

    result = apply(sqlite_app, kill_the_connected_follower)

    assert killed and zk_ensemble.leader() is leader  # no election: the quorum held
    assert result.outcome == Outcome.APPLIED and result.ops_applied == OPS, result.message
    live = live_now(zk_ensemble, ensemble_chroot)
    assert audited_batches(sqlite_app, result.apply_id, live) == [OpStatus.APPLIED] * BATCHES
    assert live == DESIRED
    assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)


def test_pinned_follower_killed_mid_apply_and_kept_down_the_apply_stops_cleanly_and_converges(
    zk_ensemble: Ensemble, ensemble_chroot: str, tmp_path: Path, sqlite_url: str
) -> None:
    # A short session: how long the writer waits for its server, and how long the
    # leader keeps the session (and its lock node) once the client cannot reach it.
    app = make_app(sqlite_url, tmp_path / "home", zk_session_timeout=5.0)
    follower = zk_ensemble.followers()[0]
    pinned = zk_ensemble.hosts(follower, chroot=ensemble_chroot)  # its only server
    try:
        prepare_apply(app, zk_ensemble, ensemble_chroot, pinned)

        def kill_the_follower(event: BatchEvent) -> None:
            if event.index == 1:
                with client_states(event.client) as states:
                    zk_ensemble.kill(follower)
                    wait_for(lambda: KazooState.SUSPENDED in states, "the client to lose it")

        result = apply(app, kill_the_follower)

        assert not zk_ensemble.is_running(follower)
        assert result.outcome == Outcome.FAILED, result.message
        assert "suspended for more than 5s; nothing more was sent" in result.message
        assert result.ops_applied == 2 * BATCH
        live = live_now(zk_ensemble, ensemble_chroot)
        batches = audited_batches(app, result.apply_id, live)
        assert batches == [OpStatus.APPLIED] * 2 + [OpStatus.NOT_SENT] * 5
        # The leader expires the unreachable session, and its lock node with it.
        path = lock_path(app.settings.lock_root, "app")
        with connected(zk_ensemble.hosts(chroot=ensemble_chroot)) as client:
            wait_for(lambda: client.get_children(path) == [], "the dead session's lock node")

        zk_ensemble.restart(follower)
        assert_converges(app, zk_ensemble, ensemble_chroot)
    finally:
        app.close()


def test_quorum_lost_and_regained_between_batches_the_apply_resumes_and_completes(
    zk_ensemble: Ensemble,
    ensemble_chroot: str,
    sqlite_app: App,
    background: ThreadPoolExecutor,
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_apply(sqlite_app, zk_ensemble, ensemble_chroot, every)
    regained: list[Future[None]] = []

    def lose_the_quorum(event: BatchEvent) -> None:
        if event.index == 1:
            survivor = zk_ensemble.member_on(connected_port(event.client))
            others = [m for m in zk_ensemble.members if m is not survivor]
            with client_states(event.client) as states:
                zk_ensemble.kill(*others)
                wait_for(lambda: KazooState.SUSPENDED in states, "the client to lose its server")
            assert zk_ensemble.mode(survivor) is None  # alone, it serves nobody
            regained.append(background.submit(zk_ensemble.restart, *others))

    result = apply(sqlite_app, lose_the_quorum)

    assert regained
    regained[0].result()
    assert result.outcome == Outcome.APPLIED and result.ops_applied == OPS, result.message
    live = live_now(zk_ensemble, ensemble_chroot)
    assert audited_batches(sqlite_app, result.apply_id, live) == [OpStatus.APPLIED] * BATCHES
    assert live == DESIRED
    assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)


def test_quorum_lost_with_a_batch_in_flight_leaves_whole_batches_and_a_later_apply_converges(
    zk_ensemble: Ensemble,
    ensemble_chroot: str,
    sqlite_app: App,
    background: ThreadPoolExecutor,
) -> None:
    follower = zk_ensemble.followers()[0]
    others = [m for m in zk_ensemble.members if m is not follower]
    proxy = FaultProxy(("127.0.0.1", follower.port))
    try:
        prepare_apply(
            sqlite_app, zk_ensemble, ensemble_chroot, proxy.connect_string + ensemble_chroot
        )
        transactions: list[int] = []
        regained: list[Future[None]] = []

        def lose_the_quorum(opcode: int) -> None:
            if opcode == MULTI:
                transactions.append(opcode)
                if len(transactions) == 2:  # batch 2 just went on to the follower
                    zk_ensemble.kill(*others)
                    regained.append(background.submit(zk_ensemble.restart, *others))

        proxy.on_forward = lose_the_quorum
        result = apply(sqlite_app)
        proxy.on_forward = None

        assert regained
        regained[0].result()
        assert result.outcome in (Outcome.FAILED, Outcome.APPLIED), result.message
        live = live_now(zk_ensemble, ensemble_chroot)
        batches = audited_batches(sqlite_app, result.apply_id, live)
        assert_stopped_in_flight_or_completed(result, batches)
        assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)
    finally:
        proxy.close()


def test_session_expired_mid_apply_on_the_ensemble_stops_after_whole_batches_and_converges(
    zk_ensemble: Ensemble, ensemble_chroot: str, sqlite_app: App
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_apply(sqlite_app, zk_ensemble, ensemble_chroot, every)
    sent_after_loss: list[int] = []

    def expire(event: BatchEvent) -> None:
        assert event.watch is not None
        if event.watch.lost.is_set():
            sent_after_loss.append(event.index)
        if event.index == 1:
            expire_session(event.client, every)
            assert event.watch.lost.wait(15)

    result = apply(sqlite_app, expire)

    assert result.outcome == Outcome.FAILED and "session was lost" in result.message
    assert result.ops_applied == 2 * BATCH and sent_after_loss == []
    live = live_now(zk_ensemble, ensemble_chroot)
    batches = audited_batches(sqlite_app, result.apply_id, live)
    assert batches == [OpStatus.APPLIED] * 2 + [OpStatus.NOT_SENT] * 5
    assert_no_stale_lock(sqlite_app, zk_ensemble, ensemble_chroot)  # it went with the session
    assert_converges(sqlite_app, zk_ensemble, ensemble_chroot)


def test_eight_concurrent_applies_of_one_tree_write_once_and_the_others_find_nothing_to_do(
    zk_ensemble: Ensemble, ensemble_chroot: str, mariadb_app: App, mariadb_url: str, tmp_path: Path
) -> None:
    every = zk_ensemble.hosts(chroot=ensemble_chroot)
    prepare_apply(mariadb_app, zk_ensemble, ensemble_chroot, every)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(
        ZKDRIFT_DATABASE_URL=mariadb_url,
        ZKDRIFT_HOME=str(tmp_path / "home"),
        ZKDRIFT_ZK_CONNECT_TIMEOUT="10",
        COLUMNS="200",
    )
    path = lock_path(mariadb_app.settings.lock_root, "app")
    with connected(every) as client:
        # Hold the tree's lock until all eight wait for it, so they truly run at once.
        gate = client.Lock(path, "test gate")
        assert gate.acquire(timeout=10)
        command = [sys.executable, "-m", "zkdrift", "apply", "app", "--yes", "--prune"]
        runs = [
            subprocess.Popen(
                [*command, "--json", "--wait", "60", "--reason", f"run {i}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(8)
        ]
        try:
            try:
                wait_for(
                    lambda: len(client.get_children(path)) == 9, "eight applies waiting", timeout=60
                )
                waiting = lock_status(client, path).waiters
                assert {w.pid for w in waiting} == {run.pid for run in runs}
            finally:
                gate.release()
            outputs = [run.communicate(timeout=120) for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
                    run.communicate()

    assert [run.returncode for run in runs] == [0] * 8, [err for _out, err in outputs]
    results = [json.loads(out) for out, _err in outputs]
    outcomes = sorted(r["outcome"] for r in results)
    assert outcomes == ["applied"] + ["no-op"] * 7
    writer = next(r for r in results if r["outcome"] == "applied")
    assert writer["ops_applied"] == OPS
    assert sorted(r["ops_applied"] for r in results) == [0] * 7 + [OPS]
    live = live_now(zk_ensemble, ensemble_chroot)
    assert live == DESIRED
    entries = audit_log(mariadb_app, "app")
    assert len(entries) == 8 and sorted(e.outcome for e in entries) == outcomes
    assert audited_batches(mariadb_app, writer["apply_id"], live) == [OpStatus.APPLIED] * BATCHES
    for entry in entries:
        if entry.id != writer["apply_id"]:
            assert entry.ops_applied == 0 and audit_detail(mariadb_app, "app", entry.id)[1] == []
    assert_no_stale_lock(mariadb_app, zk_ensemble, ensemble_chroot)
    assert_db_sound(mariadb_app)
