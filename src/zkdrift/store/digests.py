"""A node's digests, and a process that works them out while the capture goes on.

Every node a capture reads gets three digests: its path's
(:func:`~zkdrift.model.path_key`), its value's (:func:`~zkdrift.model.value_key`)
and its state's (:func:`state_key`), and the open rows are matched by them.
At a million nodes those three take more CPU than anything else in an
unchanged re-snapshot, and Python's hash functions hold the GIL for values as
small as configuration values are. So a large read hands each batch, still
the bytes ZooKeeper sent (:class:`~zkdrift.wire.WireNodes`), to a digest
worker: ``python -m zkdrift.store.digests``, a process of its own on another
core. It answers with the batch's digests end to end; the capture decodes
only the nodes it writes.

The worker speaks over its stdin and stdout, one frame per batch, in order.
A request is ``<III`` (nodes, bytes of paths, bytes of response), the paths
joined by NUL (which no znode name holds), each node's offset as ``<I``, then
the response. An answer is ``<IqIqq`` (nodes, value bytes, ephemeral nodes,
largest mzxid, largest zxid), then the path digests, the state digests and the
value digests of those nodes. A worker that fails answers :data:`FAILED`
and the reason instead, and exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess
import sys
import tempfile
from array import array
from binascii import hexlify
from collections.abc import Sequence
from functools import partial
from hashlib import blake2b, sha1, sha256
from operator import methodcaller
from pathlib import Path
from typing import IO, Any, NamedTuple

from zkdrift.errors import ZkDriftError
from zkdrift.model import PATH_KEY_BYTES
from zkdrift.wire import LENGTH, STAT, WireNodes

# Bytes kept of a state digest (see :data:`~zkdrift.store.models.StateDigest`).
STATE_KEY_BYTES = 8
VALUE_KEY_BYTES = 32
# The stat as a state digest takes it: version, cversion, aversion, czxid, mzxid,
# pzxid, ctime, mtime, ephemeralOwner, numChildren, dataLength.
STATE_STAT = struct.Struct(">iiiqqqqqqii")

# Where each field of a stat lies in its wire form (:data:`~zkdrift.wire.STAT`).
_WIRE_FIELDS = {
    "czxid": (0, 8),
    "mzxid": (8, 16),
    "ctime": (16, 24),
    "mtime": (24, 32),
    "version": (32, 36),
    "cversion": (36, 40),
    "aversion": (40, 44),
    "owner": (44, 52),
    "length": (52, 56),
    "children": (56, 60),
    "pzxid": (60, 68),
}
_STATE_FIELDS = (
    "version",
    "cversion",
    "aversion",
    "czxid",
    "mzxid",
    "pzxid",
    "ctime",
    "mtime",
    "owner",
    "children",
    "length",
)
# The bytes of a wire stat in STATE_STAT's order: both are big-endian, field for field.
_STATE_ORDER = [i for name in _STATE_FIELDS for i in range(*_WIRE_FIELDS[name])]
assert len(_STATE_ORDER) == STATE_STAT.size == STAT.size
_LENGTH_BYTES = list(range(LENGTH.size))
_STAT_BYTES = list(range(STAT.size))
_DIGEST = methodcaller("digest")
_blake2b_128 = partial(blake2b, digest_size=16)
try:  # Python's own SHA-1 and SHA-256: for inputs this small, faster than OpenSSL's
    from _sha1 import sha1 as _sha1  # type: ignore[import-not-found]
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - a Python built without them
    _sha1 = partial(sha1, usedforsecurity=False)
    _sha256 = sha256

_REQUEST = struct.Struct("<III")
_ANSWER = struct.Struct("<IqIqq")
FAILED = 0xFFFFFFFF


class DigestWorkerError(ZkDriftError):
    """The digest worker failed or went away mid-capture."""


class Digests(NamedTuple):
    """The digests of one batch, end to end, with what the capture counts of it."""

    nodes: int
    path_keys: bytes
    state_keys: bytes
    value_keys: bytes
    total: int  # value bytes
    ephemeral: int
    max_mzxid: int
    max_zxid: int  # the largest czxid, mzxid or pzxid


def digest_wire(paths: Sequence[bytes], starts: Sequence[int], buf: bytes) -> Digests:
    """The digests of the nodes whose GetDataResponses start at ``starts`` in ``buf``,
    with these (UTF-8) paths: what the capture's own ``_prepare`` works out from
    decoded nodes, byte for byte.

    A batch at a time: the lengths and stats are gathered from the buffer by
    numpy, each state digest's input (the value digest's hex, then the stat in
    :data:`STATE_STAT` order) is laid out as one row of an array, and the hash
    functions are mapped over the batch with no Python code run per node.
    """
    import numpy as np

    count = len(starts)
    if len(paths) != count:
        raise ValueError(f"{len(paths)} paths for {count} nodes")
    if not count:
        return Digests(0, b"", b"", b"", 0, 0, 0, 0)
    raw = np.frombuffer(buf, dtype=np.uint8)
    at = np.asarray(starts, dtype=np.int64)
    if int(at.max()) + 4 > len(buf):
        raise ValueError("a node starts past the end of the response")
    lengths = raw[at[:, None] + _LENGTH_BYTES].view(">i4").ravel()
    data = at + 4
    ends = data + np.maximum(lengths, 0)
    if int(ends.max()) + STAT.size > len(buf):
        raise ValueError("a node ends past the end of the response")
    stats = raw[ends[:, None] + _STAT_BYTES]  # each node's stat, in wire order
    values = map(buf.__getitem__, map(slice, data.tolist(), ends.tolist()))
    value_keys = b"".join(map(_DIGEST, map(_sha256, values)))
    width = 2 * VALUE_KEY_BYTES + STATE_STAT.size
    inputs = np.empty((count, width), dtype=np.uint8)
    inputs[:, : 2 * VALUE_KEY_BYTES] = np.frombuffer(hexlify(value_keys), dtype=np.uint8).reshape(
        count, -1
    )
    inputs[:, 2 * VALUE_KEY_BYTES :] = stats[:, _STATE_ORDER]
    laid = inputs.tobytes()
    rows = map(
        laid.__getitem__,
        map(slice, range(0, count * width, width), range(width, count * width + 1, width)),
    )
    states = np.frombuffer(b"".join(map(_DIGEST, map(_blake2b_128, rows))), dtype=np.uint8)
    paths_hashed = np.frombuffer(b"".join(map(_DIGEST, map(_sha1, paths))), dtype=np.uint8)

    def field(name: str) -> Any:
        first, last = _WIRE_FIELDS[name]
        return np.ascontiguousarray(stats[:, first:last]).view(">i8").ravel()

    czxid, mzxid, pzxid, owner = field("czxid"), field("mzxid"), field("pzxid"), field("owner")
    max_mzxid = max(int(mzxid.max()), 0)
    return Digests(
        count,
        paths_hashed.reshape(count, -1)[:, :PATH_KEY_BYTES].tobytes(),
        states.reshape(count, -1)[:, :STATE_KEY_BYTES].tobytes(),
        value_keys,
        int(np.maximum(lengths, 0).sum()),
        int(np.count_nonzero(owner)),
        max_mzxid,
        max(int(czxid.max()), int(pzxid.max()), max_mzxid),
    )


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError(f"{size - len(data)} bytes short")
    return data


def serve(requests: IO[bytes], answers: IO[bytes]) -> int:
    """The worker: a frame of digests for every frame of nodes, until the input ends."""
    while True:
        head = requests.read(_REQUEST.size)
        if not head:
            return 0
        try:
            if len(head) != _REQUEST.size:
                raise EOFError("a request cut short")
            count, path_bytes, buf_bytes = _REQUEST.unpack(head)
            paths = _read(requests, path_bytes).split(b"\0") if count else []
            starts = array("I")
            starts.frombytes(_read(requests, 4 * count))
            done = digest_wire(paths, starts, _read(requests, buf_bytes))
        except Exception as exc:  # the reason goes back; the capture fails with it
            reason = f"{type(exc).__name__}: {exc}".encode()
            answers.write(_ANSWER.pack(FAILED, len(reason), 0, 0, 0) + reason)
            answers.flush()
            return 1
        counts = (done.nodes, done.total, done.ephemeral, done.max_mzxid, done.max_zxid)
        answers.write(_ANSWER.pack(*counts))
        answers.write(done.path_keys)
        answers.write(done.state_keys)
        answers.write(done.value_keys)
        answers.flush()


# Bytes the pipe to the worker holds (Linux's F_SETPIPE_SZ; the default is 64 KiB).
PIPE_BYTES = 1 << 20
_SETPIPE_SZ = 1031


def _widen(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), _SETPIPE_SZ, PIPE_BYTES)


class DigestWorker:
    """A running digest worker. One thread sends (:meth:`send`) while another
    receives (:meth:`receive`) the answers in the same order; neither waits on
    the other, so full pipes never deadlock them."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # The worker imports zkdrift from where this process did.
        source = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zkdrift.store.digests"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors,
                env=env,
            )
        except BaseException:
            self.errors.close()
            raise
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.answers: IO[bytes] = self.process.stdout
        _widen(self.requests)

    def send(self, nodes: WireNodes) -> None:
        paths = "\0".join(nodes.paths).encode()
        write = self.requests.write
        write(_REQUEST.pack(len(nodes), len(paths), len(nodes.buf)))
        write(paths)
        write(array("I", nodes.starts).tobytes())
        write(nodes.buf)
        self.requests.flush()

    def end_input(self) -> None:
        """No more batches: the worker exits once it has answered the last."""
        with contextlib.suppress(OSError, ValueError):
            self.requests.close()

    def receive(self) -> Digests:
        """The answer to the oldest batch not yet received."""
        try:
            head = _read(self.answers, _ANSWER.size)
            count, total, ephemeral, max_mzxid, max_zxid = _ANSWER.unpack(head)
            if count == FAILED:
                reason = _read(self.answers, total).decode(errors="replace")
                raise DigestWorkerError(f"the digest worker failed: {reason}")
            keys = _read(self.answers, count * (PATH_KEY_BYTES + STATE_KEY_BYTES + VALUE_KEY_BYTES))
        except EOFError:
            raise DigestWorkerError(f"the digest worker went away: {self._exit()}") from None
        at = count * PATH_KEY_BYTES
        states = at + count * STATE_KEY_BYTES
        return Digests(
            count, keys[:at], keys[at:states], keys[states:], total, ephemeral, max_mzxid, max_zxid
        )

    def _exit(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        self.errors.seek(0)
        lines = self.errors.read().decode(errors="replace").strip().splitlines()
        said = f" ({lines[-1]})" if lines else ""
        return f"it exited with status {code}{said}"

    def close(self, grace: float = 0.0) -> None:
        """Stop the worker, after ``grace`` seconds to exit by itself (none: killed at
        once, so that a thread blocked sending to it returns), and free its pipes."""
        if grace > 0:
            self.end_input()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.end_input()
        with contextlib.suppress(OSError):
            self.answers.close()
        self.errors.close()


def main() -> Any:
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
