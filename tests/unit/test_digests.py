"""The digest worker works out, from the bytes ZooKeeper sent, exactly the digests the
capture works out from decoded nodes; it answers batch after batch in order, and a
worker that fails or goes away fails the capture with the reason."""

from __future__ import annotations

import struct

import pytest

from zkdrift.model import LiveNode
from zkdrift.store.digests import DigestWorker, DigestWorkerError, digest_wire
from zkdrift.store.snapshots import _prepare
from zkdrift.wire import WireNodes

GET_DATA = 4
# czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid
STAT = struct.Struct("!qqqqiiiqiiq")


def response(nodes: list[tuple[bytes | None, tuple[int, ...]]]) -> tuple[bytes, list[int]]:
    """A multiRead answer of getData, written out from jute's definitions, with a
    reply header in front; and where each GetDataResponse starts."""
    parts = [b"\x00" * 16]  # xid, zxid, err: not the worker's business
    starts = []
    at = 16
    for data, stat in nodes:
        parts.append(struct.pack("!iBi", GET_DATA, 0, 0))
        at += 9
        starts.append(at)
        body = struct.pack("!i", -1) if data is None else struct.pack("!i", len(data)) + data
        parts += [body, STAT.pack(*stat)]
        at += len(body) + STAT.size
    parts.append(struct.pack("!iBi", -1, 1, -1))
    return b"".join(parts), starts


NODES: list[tuple[str, bytes | None, tuple[int, ...]]] = [
    ("/", b"", (0, 0, 0, 0, 0, 4, 0, 0, 0, 3, 90)),
    ("/app", b'{"a": 1}', (5, 9, 1_700_000_000_000, 1_700_000_100_000, 3, 1, 0, 0, 8, 1, 12)),
    ("/app/é ü", "café".encode("latin-1"), (6, 6, 1, 1, 0, 0, 2, 0, 4, 0, 6)),
    ("/app/null", None, (7, 7, 2, 2, 0, 0, 0, 0, 0, 0, 7)),
    ("/app/big", bytes(range(256)) * 40, (8, 80, 3, 4, 9, 0, 0, 0, 10_240, 0, 8)),
    ("/app/leader", b"me", (2**40 + 1, 2**40 + 2, 5, 5, 0, 0, 0, 0x12_3456_789A, 2, 0, 2**40)),
    ("/app/neg", b"x", (-1, -2, -3, -4, -5, -6, -7, -8, 1, 0, -9)),
]


def wire_nodes(nodes: list[tuple[str, bytes | None, tuple[int, ...]]]) -> WireNodes:
    buf, starts = response([(data, stat) for _path, data, stat in nodes])
    return WireNodes([path for path, _data, _stat in nodes], buf, starts)


def test_the_worker_digests_equal_the_captures_own_byte_for_byte() -> None:
    nodes = wire_nodes(NODES)
    decoded: list[LiveNode] = list(nodes)
    prepared = _prepare(decoded)

    done = digest_wire([p.encode() for p in nodes.paths], nodes.starts, nodes.buf)

    assert done.nodes == len(NODES)
    assert done.path_keys == prepared.path_keys
    assert done.state_keys == prepared.state_keys
    assert done.value_keys == b"".join(node[4] for node in prepared.nodes)
    assert (done.total, done.ephemeral, done.max_mzxid, done.max_zxid) == (
        prepared.total,
        prepared.ephemeral,
        prepared.max_mzxid,
        prepared.max_zxid,
    )
    assert done.ephemeral == 2 and done.max_zxid == 2**40 + 2


def test_wire_nodes_decode_each_node_as_the_reader_yields_it() -> None:
    nodes = wire_nodes(NODES)

    assert nodes[3] == ("/app/null", b"", NODES[3][2], None)
    assert nodes[4][1] == bytes(range(256)) * 40 and type(nodes[4][1]) is bytes
    assert [node[0] for node in nodes[1:3]] == ["/app", "/app/é ü"]
    assert list(nodes)[2] == ("/app/é ü", "café".encode("latin-1"), NODES[2][2], None)
    with pytest.raises(ValueError, match="2 paths for 1 nodes"):
        WireNodes(["/a", "/b"], nodes.buf, [16])


def test_a_worker_answers_every_batch_in_order() -> None:
    batches = [wire_nodes(NODES[i:]) for i in range(len(NODES))]
    worker = DigestWorker()
    try:
        for batch in batches:
            worker.send(batch)
        answers = [worker.receive() for _ in batches]
        worker.end_input()
        assert worker.process.wait(timeout=10) == 0
    finally:
        worker.close()

    for batch, answer in zip(batches, answers, strict=True):
        assert answer == digest_wire([p.encode() for p in batch.paths], batch.starts, batch.buf)


def test_a_batch_the_worker_cannot_read_fails_with_the_reason() -> None:
    nodes = wire_nodes(NODES)
    cut = WireNodes(nodes.paths, nodes.buf[:40], nodes.starts)
    worker = DigestWorker()
    try:
        worker.send(cut)
        with pytest.raises(
            DigestWorkerError,
            match="the digest worker failed: ValueError: a node starts past the end",
        ):
            worker.receive()
        assert worker.process.wait(timeout=10) == 1
    finally:
        worker.close()


def test_a_worker_killed_midway_fails_with_how_it_ended() -> None:
    worker = DigestWorker()
    try:
        worker.send(wire_nodes(NODES))
        assert worker.receive().nodes == len(NODES)
        worker.process.kill()
        with pytest.raises(DigestWorkerError, match="went away: it exited with status -9"):
            worker.receive()
    finally:
        worker.close()
