"""Reads ride out what ZooKeeper rides out: a cut connection, an old server that
answers multiRead with UNIMPLEMENTED and hangs up, a wide level. Through a loopback
proxy in front of the session's real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from tests.support.proxy import FaultProxy
from tests.support.zk import connected, create_tree
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.zk.reader import BATCH, IN_FLIGHT, ZkReadError, read_tree

TREE = {"/r": b""} | {
    f"/r/s{i:02d}/k{j:03d}": f"{i}-{j}".encode() for i in range(10) for j in range(150)
}


@pytest.fixture
def proxy(zk_server: ZooKeeperServer) -> Iterator[FaultProxy]:
    fault = FaultProxy(("127.0.0.1", zk_server.port))
    try:
        yield fault
    finally:
        fault.close()


def through(proxy: FaultProxy, zk_chroot: str, **options: object) -> Iterator[KazooClient]:
    chroot = zk_chroot[zk_chroot.index("/") :]
    with connected(proxy.connect_string + chroot, **options) as client:
        yield client


def values(zk: KazooClient, root: str = "/r") -> dict[str, bytes]:
    return {p: n.data for p, n in read_tree(zk, root).nodes.items()}


def test_a_read_cut_off_mid_level_waits_for_the_reconnect_and_is_exact(
    zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    create_tree(zk, TREE)
    cuts: list[int] = []

    def cut_once(count: int) -> None:
        if not cuts:
            cuts.append(count)
            proxy.cut()  # the session lives; the next level's requests fail first

    for client in through(proxy, zk_chroot):
        state = read_tree(client, "/r", progress=cut_once)

    assert cuts and proxy.connections >= 2
    assert {p: n.data for p, n in state.nodes.items()} == values(zk)
    assert 0 < state.zxid_start <= state.zxid_end
    assert not state.fuzzy


def test_an_old_server_is_read_node_by_node_after_it_hangs_up_and_only_asked_once(
    zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    create_tree(zk, TREE)
    proxy.old_server = True

    for client in through(proxy, zk_chroot):
        first = read_tree(client, "/r")
        second = read_tree(client, "/r")

    assert proxy.multi_reads_refused == 1  # remembered for this connection string
    assert proxy.connections >= 2  # it hung up after refusing
    expected = values(zk)
    assert {p: n.data for p, n in first.nodes.items()} == expected
    assert {p: n.data for p, n in second.nodes.items()} == expected


def test_a_wide_level_keeps_a_few_batches_in_flight_not_all_of_them(
    zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    wide = {"/w": b""} | {f"/w/n{i:05d}": b"v" for i in range(BATCH * (IN_FLIGHT + 4))}
    create_tree(zk, wide)
    proxy.latency = 0.005

    for client in through(proxy, zk_chroot):
        state = read_tree(client, "/w")

    assert len(state) == len(wide)
    assert 1 <= proxy.most_multi_reads_in_flight <= IN_FLIGHT


def test_a_read_fails_in_one_message_when_the_server_stays_away_past_the_deadline(
    zk: KazooClient, zk_chroot: str, proxy: FaultProxy
) -> None:
    create_tree(zk, TREE)

    for client in through(proxy, zk_chroot):
        with proxy.down(), pytest.raises(ZkReadError, match="reading '/r' failed"):
            read_tree(client, "/r", timeout=2)


def test_a_read_that_sees_writes_land_while_it_runs_is_fuzzy(zk: KazooClient) -> None:
    create_tree(zk, TREE)
    written: list[int] = []

    def write_during(count: int) -> None:
        if not written:
            written.append(count)
            zk.set("/r/s09/k149", b"changed while read")

    state = read_tree(zk, "/r", progress=write_during)

    assert state.fuzzy
