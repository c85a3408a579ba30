"""multiRead (opcode 22) on the wire: the request zkdrift sends and the responses it reads.

The expected bytes are written out from ZooKeeper's jute definitions
(MultiHeader {int type; boolean done; int err}, GetDataRequest {ustring path;
boolean watch}, GetDataResponse {buffer data; Stat stat}, GetChildrenResponse
{vector<ustring> children}), independently of the code under test.
"""

from __future__ import annotations

import struct

from kazoo.exceptions import NoAuthError, NoNodeError

from zkdrift.zk.protocol import ChildReads, DataReads, MultiRead, get_children_op, get_data_op

GET_DATA, GET_CHILDREN, ERROR = 4, 8, -1


def header(op_type: int, done: bool = False, err: int = -1) -> bytes:
    return struct.pack("!iBi", op_type, 1 if done else 0, err)


def ustring(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!i", len(raw)) + raw


def stat(version: int, num_children: int, data_length: int) -> bytes:
    # czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid
    return struct.pack(
        "!qqqqiiiqiiq", 10, 11, 1000, 2000, version, 3, 0, 0, data_length, num_children, 12
    )


def test_a_batch_of_reads_serializes_as_one_multi_read_with_an_end_marker() -> None:
    request = MultiRead([get_data_op("/app/é"), get_children_op("/app")])

    assert MultiRead.type == 22
    assert bytes(request.serialize()) == (
        header(GET_DATA)
        + ustring("/app/é")
        + b"\x00"  # no watch
        + header(GET_CHILDREN)
        + ustring("/app")
        + b"\x00"
        + header(-1, done=True, err=-1)
    )


def test_a_response_yields_data_and_stat_children_and_per_op_errors_in_order() -> None:
    body = (
        header(GET_DATA, err=0)
        + struct.pack("!i", 3)
        + b"\x00\xffx"
        + stat(version=7, num_children=2, data_length=3)
        + header(GET_CHILDREN, err=0)
        + struct.pack("!i", 2)
        + ustring("a")
        + ustring("ü b")
        + header(ERROR, err=-101)
        + struct.pack("!i", -101)  # NONODE for this op alone
        + header(ERROR, err=-102)
        + struct.pack("!i", -102)  # NOAUTH
        + header(GET_DATA, err=0)
        + struct.pack("!i", -1)  # a null buffer: empty data
        + stat(version=0, num_children=0, data_length=0)
        + header(-1, done=True, err=-1)
    )
    prefix = b"junk"

    results = MultiRead.deserialize(prefix + body, len(prefix))

    assert len(results) == 5
    data, st = results[0]
    assert data == b"\x00\xffx"
    assert (st.version, st.numChildren, st.dataLength, st.czxid, st.mzxid, st.pzxid) == (
        7,
        2,
        3,
        10,
        11,
        12,
    )
    assert results[1] == ["a", "ü b"]
    assert isinstance(results[2], NoNodeError)
    assert isinstance(results[3], NoAuthError)
    empty, empty_stat = results[4]
    assert empty in (None, b"") and empty_stat.version == 0


def test_an_empty_batch_is_just_the_end_marker_both_ways() -> None:
    assert bytes(MultiRead([]).serialize()) == header(-1, done=True, err=-1)
    assert MultiRead.deserialize(header(-1, done=True, err=-1), 0) == []


def test_add_watch_serializes_the_path_and_the_persistent_recursive_mode() -> None:
    from zkdrift.zk.protocol import PERSISTENT_RECURSIVE, AddWatch

    request = AddWatch("/app/é", PERSISTENT_RECURSIVE)

    assert AddWatch.type == 106
    assert bytes(request.serialize()) == ustring("/app/é") + struct.pack("!i", 1)
    assert AddWatch.deserialize(struct.pack("!i", 0), 0) is True


def test_data_reads_serialize_exactly_as_the_general_multi_read_does() -> None:
    paths = ["/app", "/app/é", "/" + "x" * 300]

    assert DataReads(paths).serialize() == bytes(
        MultiRead([get_data_op(p) for p in paths]).serialize()
    )
    assert ChildReads(paths).serialize() == bytes(
        MultiRead([get_children_op(p) for p in paths]).serialize()
    )
    assert DataReads([]).serialize() == header(-1, done=True, err=-1)


def test_data_reads_decode_values_and_stats_in_wire_order_from_the_bytes() -> None:
    body = (
        header(GET_DATA, err=0)
        + struct.pack("!i", 3)
        + b"\x00\xffx"
        + stat(version=7, num_children=2, data_length=3)
        + header(ERROR, err=-101)
        + struct.pack("!i", -101)  # NONODE: the node went away mid-walk
        + header(ERROR, err=-102)
        + struct.pack("!i", -102)  # NOAUTH: a real error for this op alone
        + header(GET_DATA, err=0)
        + struct.pack("!i", -1)  # a null buffer
        + stat(version=0, num_children=0, data_length=0)
        + header(GET_DATA, err=0)
        + struct.pack("!i", 0)  # an empty one
        + stat(version=1, num_children=0, data_length=0)
        + header(-1, done=True, err=-1)
    )

    answer = DataReads.deserialize(b"junk" + body, 4)
    results = answer.results()

    assert results[0] == (b"\x00\xffx", (10, 11, 1000, 2000, 7, 3, 0, 0, 3, 2, 12))
    assert type(results[0][0]) is bytes
    assert results[1] is None
    assert isinstance(results[2], NoAuthError)
    assert results[3] == (b"", (10, 11, 1000, 2000, 0, 3, 0, 0, 0, 0, 12))
    assert results[4] == (b"", (10, 11, 1000, 2000, 1, 3, 0, 0, 0, 0, 12))
    assert len(results) == 5
    # Scanned, not decoded: where each answer starts and how many children it has.
    assert answer.children == [2, 0, 0, 0, 0]
    assert answer.starts[1:3] == [-1, -1] and answer.starts[0] == 4 + 9
    assert list(answer.failures) == [1, 2]


def test_child_reads_decode_names_and_errors_per_path() -> None:
    body = (
        header(GET_CHILDREN, err=0)
        + struct.pack("!i", 2)
        + ustring("a")
        + ustring("ü b")
        + header(GET_CHILDREN, err=0)
        + struct.pack("!i", 0)
        + header(ERROR, err=-101)
        + struct.pack("!i", -101)
        + header(-1, done=True, err=-1)
    )

    assert ChildReads.deserialize(body, 0) == [["a", "ü b"], [], None]
