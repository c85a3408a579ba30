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

from collections import namedtuple
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


def multi_read_async(client: Any, ops: list[Any]) -> Any:
    """Send one multiRead; paths in ``ops`` must already carry the client's chroot."""
    async_result = client.handler.async_result()
    client._call(MultiRead(ops), async_result)
    return async_result
