"""Live nodes as ZooKeeper's wire carried them, decoded only when asked.

A ``multiRead`` of ``getData`` answers with one buffer holding, per node, the
value's length, the value and the stat (jute's GetDataResponse). The reader
finds where each node starts and leaves the rest undecoded: a capture hands
the bytes to a digest worker (:mod:`zkdrift.store.digests`) and decodes only
the nodes it writes, and nothing builds a tuple for a node that is unchanged.

Pure: no I/O, no ZooKeeper; the buffer is plain bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import overload

from zkdrift.model import LiveNode, WireStat

# jute's Stat: czxid, mzxid, ctime, mtime, version, cversion, aversion,
# ephemeralOwner, dataLength, numChildren, pzxid (the order of a WireStat).
STAT = struct.Struct("!qqqqiiiqiiq")
LENGTH = struct.Struct("!i")


def node_at(buf: bytes, start: int) -> tuple[bytes, WireStat]:
    """The value and stat of the GetDataResponse at ``start`` in ``buf``."""
    length: int = LENGTH.unpack_from(buf, start)[0]
    start += 4
    if length > 0:
        data = buf[start : start + length]
        start += length
    else:  # -1 is a null value, read as empty
        data = b""
    return data, STAT.unpack_from(buf, start)


class WireNodes(Sequence[LiveNode]):
    """One batch of live nodes: their paths, the response bytes, and where each
    node's GetDataResponse starts in them. Indexing decodes that node alone,
    as ``(path, data, stat, None)``: ACLs are never part of it."""

    __slots__ = ("buf", "paths", "starts")

    def __init__(self, paths: Sequence[str], buf: bytes, starts: Sequence[int]) -> None:
        if len(paths) != len(starts):
            raise ValueError(f"{len(paths)} paths for {len(starts)} nodes")
        self.paths = paths
        self.buf = buf
        self.starts = starts

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> LiveNode: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[LiveNode]: ...

    def __getitem__(self, index: int | slice) -> LiveNode | Sequence[LiveNode]:
        if isinstance(index, slice):
            return WireNodes(self.paths[index], self.buf, self.starts[index])
        data, stat = node_at(self.buf, self.starts[index])
        return self.paths[index], data, stat, None

    def __iter__(self) -> Iterator[LiveNode]:
        buf = self.buf
        for path, start in zip(self.paths, self.starts, strict=True):
            data, stat = node_at(buf, start)
            yield path, data, stat, None
