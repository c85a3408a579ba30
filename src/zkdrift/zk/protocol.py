"""ZooKeeper's ``multiRead`` (opcode 22) and ``addWatch`` (opcode 106) requests
(ZooKeeper >= 3.6), for kazoo.

kazoo speaks ``multi`` for writes but has no batched read. A single
``multiRead`` carries hundreds of ``getData``/``getChildren`` operations and
returns each result (or its error) independently, so reading a tree costs a
few requests per level instead of one per node. Servers older than 3.6
answer ``UnimplementedError``; the reader then falls back to one pipelined
request per node.

``addWatch`` sets a persistent (optionally recursive) watch: the server sends
a notification for every create, change and delete under the path, and never
consumes the watch. kazoo has no call for it; :mod:`zkdrift.zk.watch` routes
the notifications.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.exceptions import EXCEPTIONS
from kazoo.protocol.serialization import (
    GetChildren,
    GetData,
    MultiHeader,
    ZnodeStat,
    int_struct,
    multiheader_struct,
    read_buffer,
    read_string,
    stat_struct,
    write_string,
)

from zkdrift.model import WireStat
from zkdrift.wire import node_at

# addWatch modes (ZooKeeper's AddWatchMode).
PERSISTENT = 0
PERSISTENT_RECURSIVE = 1


class MultiRead(namedtuple("MultiRead", "operations")):
    """A batch of ``GetData``/``GetChildren`` requests sent as one ``multiRead``.

    The response is a list with, per operation, ``(data, ZnodeStat)``, a list
    of child names, or a kazoo exception instance for that operation alone.
    """

    type = 22

    def serialize(self) -> bytearray:
        b = bytearray()
        for op in self.operations:
            b.extend(MultiHeader(op.type, False, -1).serialize() + op.serialize())
        b.extend(multiheader_struct.pack(-1, True, -1))
        return b

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> list[Any]:
        results: list[Any] = []
        header, offset = MultiHeader.deserialize(buf, offset)
        while not header.done:
            if header.type == GetData.type:
                data, offset = read_buffer(buf, offset)
                stat = ZnodeStat._make(stat_struct.unpack_from(buf, offset))
                offset += stat_struct.size
                results.append((data, stat))
            elif header.type == GetChildren.type:
                count = int_struct.unpack_from(buf, offset)[0]
                offset += int_struct.size
                children = []
                for _ in range(max(count, 0)):
                    child, offset = read_string(buf, offset)
                    children.append(child)
                results.append(children)
            elif header.type == -1:
                err = int_struct.unpack_from(buf, offset)[0]
                offset += int_struct.size
                results.append(EXCEPTIONS[err]())
            else:  # pragma: no cover - the server only answers what was asked
                raise ValueError(f"unexpected multiRead result type {header.type}")
            header, offset = MultiHeader.deserialize(buf, offset)
        return results


GET_DATA = 4
GET_CHILDREN = 8
_ERROR = -1
_NO_NODE = -101
_HEAD = struct.Struct("!iBi")  # MultiHeader: type, done, err
_INT = struct.Struct("!i")
_OP = struct.Struct("!iBii")  # MultiHeader, then the path's length
# From a GetDataResponse's Stat: its numChildren, then the next MultiHeader's type and
# done (the Stat is 68 bytes, numChildren at 56).
_TAIL = struct.Struct("!56xi8xiB")
_END = _HEAD.pack(-1, True, -1)

# One getData's answer: data and stat, None for a node that is gone, or the error.
DataResult = tuple[bytes, WireStat] | Exception | None


class _Reads:
    """One multiRead of a single operation over many paths, serialised and decoded
    straight from the bytes: no kazoo request or stat object per node.

    ``paths`` must already carry the client's chroot.
    """

    type = 22
    op = 0

    __slots__ = ("paths",)

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths

    def serialize(self) -> bytes:
        op, pack = self.op, _OP.pack
        parts = []
        for path in self.paths:
            raw = path.encode("utf-8")
            parts.append(pack(op, False, -1, len(raw)))
            parts.append(raw)
            parts.append(b"\x00")  # no watch
        parts.append(_END)
        return b"".join(parts)

    def __repr__(self) -> str:  # kazoo logs requests at debug level: no paths
        return f"{type(self).__name__}({len(self.paths)} paths)"


def _error(buf: bytes, offset: int) -> Exception | None:
    code: int = _INT.unpack_from(buf, offset)[0]
    return None if code == _NO_NODE else EXCEPTIONS[code]()


@dataclass(slots=True)
class DataAnswer:
    """A multiRead of ``getData`` answered, left as the bytes it came in: for every
    path in order, where its GetDataResponse starts in ``buf`` (decoded with
    :func:`zkdrift.wire.node_at`) and its ``numChildren``; ``failures`` maps the
    positions of paths without one to None for a node that is gone, or to a
    kazoo exception instance for any other error of that operation alone
    (their start and children are -1 and 0)."""

    buf: bytes
    starts: list[int]
    children: list[int]
    failures: dict[int, Exception | None]

    def results(self) -> list[DataResult]:
        """Every path's answer decoded: ``(data, WireStat)``, None or the error."""
        return [
            self.failures[i] if i in self.failures else node_at(self.buf, start)
            for i, start in enumerate(self.starts)
        ]


class DataReads(_Reads):
    """``getData`` of every path, answered as a :class:`DataAnswer`. The answer is
    scanned, not decoded (kazoo's connection thread runs this for every batch): no
    value is copied and no stat unpacked beyond its ``numChildren``."""

    op = GET_DATA
    __slots__ = ()

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> DataAnswer:
        if not isinstance(buf, bytes):
            buf = bytes(buf)
        starts: list[int] = []
        children: list[int] = []
        failures: dict[int, Exception | None] = {}
        add_start, add_children = starts.append, children.append
        unpack_int, unpack_head = _INT.unpack_from, _HEAD.unpack_from
        unpack_tail = _TAIL.unpack_from
        kind, done, _err = unpack_head(buf, offset)
        offset += 9
        while not done:
            if kind == GET_DATA:
                add_start(offset)
                length = unpack_int(buf, offset)[0]
                offset += 4 + length if length > 0 else 4
                count, kind, done = unpack_tail(buf, offset)
                add_children(count)
                offset += 77
                continue
            if kind != _ERROR:  # pragma: no cover - the server only answers what was asked
                raise ValueError(f"unexpected multiRead result type {kind}")
            failures[len(starts)] = _error(buf, offset)
            add_start(-1)
            add_children(0)
            offset += 4
            kind, done, _err = unpack_head(buf, offset)
            offset += 9
        return DataAnswer(buf, starts, children, failures)


class ChildReads(_Reads):
    """``getChildren`` of every path. The response holds, per path in order, the
    list of child names, None for a node that is gone, or a kazoo exception
    instance for any other error."""

    op = GET_CHILDREN
    __slots__ = ()

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> list[list[str] | Exception | None]:
        if not isinstance(buf, bytes):
            buf = bytes(buf)
        results: list[list[str] | Exception | None] = []
        unpack_int, unpack_head = _INT.unpack_from, _HEAD.unpack_from
        kind, done, _err = unpack_head(buf, offset)
        offset += 9
        while not done:
            if kind == GET_CHILDREN:
                count = unpack_int(buf, offset)[0]
                offset += 4
                names = []
                for _ in range(max(count, 0)):
                    length = unpack_int(buf, offset)[0]
                    offset += 4
                    names.append(buf[offset : offset + length].decode("utf-8"))
                    offset += length
                results.append(names)
            elif kind == _ERROR:
                results.append(_error(buf, offset))
                offset += 4
            else:  # pragma: no cover - the server only answers what was asked
                raise ValueError(f"unexpected multiRead result type {kind}")
            kind, done, _err = unpack_head(buf, offset)
            offset += 9
        return results


class AddWatch(namedtuple("AddWatch", "path mode")):
    """``addWatch(path, mode)``: AddWatchRequest {ustring path; int mode}.

    The server answers with an empty body (an ErrorResponse of 0 when it
    succeeded); a failure arrives as the reply header's error code, which
    kazoo turns into the exception.
    """

    type = 106

    def serialize(self) -> bytearray:
        b = bytearray()
        b.extend(write_string(self.path))
        b.extend(int_struct.pack(self.mode))
        return b

    @classmethod
    def deserialize(cls, _buf: bytes, _offset: int) -> bool:
        return True


def add_watch_async(client: Any, path: str, mode: int = PERSISTENT_RECURSIVE) -> Any:
    """Send one addWatch; ``path`` must already carry the client's chroot."""
    async_result = client.handler.async_result()
    client._call(AddWatch(path, mode), async_result)
    return async_result


def get_data_op(path: str) -> Any:
    return GetData(path, None)


def get_children_op(path: str) -> Any:
    return GetChildren(path, None)


def multi_read_async(client: Any, ops: list[Any] | _Reads) -> Any:
    """Send one multiRead (a :class:`DataReads`/:class:`ChildReads`, or a list of
    kazoo read ops); paths must already carry the client's chroot."""
    async_result = client.handler.async_result()
    client._call(ops if isinstance(ops, _Reads) else MultiRead(ops), async_result)
    return async_result
