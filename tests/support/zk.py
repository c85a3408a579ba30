"""ZooKeeper helpers for tests: build and tear down trees, read them back, expire sessions,
and start servers (the session's shared one and the ones fault tests kill)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl_credential

from zkdrift.devtools.zkserver import ZooKeeperServer, free_port
from zkdrift.zk.reader import read_tree

# The servers' superuser: the fixtures clean up trees whose ACLs lock everyone else out.
SUPER_AUTH = ("digest", "super:zkdrift-tests-superuser")


@contextmanager
def connected(hosts: str, **options: object) -> Iterator[KazooClient]:
    """A kazoo client on ``hosts`` for the block (started, then stopped and closed).

    The start may wait for an ensemble's election.
    """
    client = KazooClient(hosts=hosts, timeout=10, **options)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


def start_server(data_dir: Path) -> ZooKeeperServer:
    """A real ZooKeeper (test mode: no fsync) on a free loopback port, started."""
    server = ZooKeeperServer(
        data_dir=data_dir,
        port=free_port(),
        test_mode=True,
        jvm_flags=(
            "-Dzookeeper.DigestAuthenticationProvider.superDigest="
            + make_digest_acl_credential(*SUPER_AUTH[1].split(":", 1)),
        ),
    )
    server.start()
    return server


def create_tree(client: KazooClient, nodes: dict[str, bytes]) -> None:
    """Create nodes parents first (missing parents get empty data)."""
    for path in sorted(nodes, key=lambda p: (p.count("/"), p)):
        if client.exists(path) is None:
            client.create(path, nodes[path], makepath=True)
        else:
            client.set(path, nodes[path])


def load_nodes(
    client: KazooClient, nodes: Iterable[tuple[str, bytes]], *, ops: int = 500, in_flight: int = 16
) -> int:
    """Create ``nodes`` (parents before children) in transactions of ``ops`` creates, a
    few in flight: tens of thousands of znodes a second. Returns how many were made."""
    pending: deque[Any] = deque()
    txn, size, count = client.transaction(), 0, 0
    for path, data in nodes:
        txn.create(path, data)
        size, count = size + 1, count + 1
        if size >= ops:
            pending.append(txn.commit_async())
            txn, size = client.transaction(), 0
            while len(pending) > in_flight:
                _committed(pending.popleft())
    if size:
        pending.append(txn.commit_async())
    while pending:
        _committed(pending.popleft())
    return count


def _committed(result: Any) -> None:
    failed = [r for r in result.get(timeout=60) if isinstance(r, Exception)]
    if failed:
        raise failed[0]


def delete_tree(client: KazooClient, root: str) -> None:
    """Delete a subtree fast: one batched read, then deletes in transactions, deepest first."""
    for _ in range(5):  # nodes created concurrently (ephemerals of closing sessions) need a retry
        if client.exists(root) is None:
            return
        nodes = sorted(read_tree(client, root), key=lambda p: (-p.count("/"), p))
        for i in range(0, len(nodes), 500):
            tx = client.transaction()
            for path in nodes[i : i + 500]:
                tx.delete(path)
            tx.commit()
    client.delete(root, recursive=True)


def live_values(client: KazooClient, root: str = "/app") -> dict[str, bytes]:
    """Every value under ``root`` as ZooKeeper holds it now."""
    return {p: n.data for p, n in read_tree(client, root).nodes.items()}


def expire_session(client: KazooClient, hosts: str) -> None:
    """Close ``client``'s session from a second client that takes it over (as kazoo's
    test harness does): the server drops the session and its ephemeral nodes.

    On an ensemble, ``client`` can win its session back on another member before
    the thief's close goes through (it reconnects at once to the next host), so
    the takeover is repeated until a thief finds the session gone: the servers
    refuse the old session and hand the thief a new one.
    """
    client_id = client.client_id  # the session to end, whatever the client does next
    servers = hosts.split("/", 1)[0]  # no chroot: the thief checks nothing before closing
    for _ in range(20):
        thief = KazooClient(hosts=servers, client_id=client_id, timeout=10)
        thief.start(timeout=15)
        took_over = thief.client_id[0] == client_id[0]
        thief.stop()  # closes the session it holds
        thief.close()
        if not took_over:
            return
    raise AssertionError(f"session {client_id[0]:#x} was still alive after 20 takeovers")
