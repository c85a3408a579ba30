"""A loopback TCP proxy in front of a ZooKeeper server, for connection faults.

It forwards bytes both ways and can:

- play an old server: answer a ``multiRead`` (opcode 22) or ``addWatch``
  (opcode 106) request with UNIMPLEMENTED and then close the connection, as
  ZooKeeper 3.4/3.5 do;
- cut every open connection at once (a network blip; the session survives);
- hold new connections back for a while (a server that is down);
- slow every request down, so a test can act while one is in flight;
- call a test's function with a request's opcode just before the request
  goes on to the server (``on_request``), or right after (``on_forward``),
  to break something before it arrives or while it is in flight.

It understands just enough of the wire format for that: client frames are a
4-byte length and a payload; every frame after the connect request starts
with the request header (xid, opcode).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

MULTI_READ = 22
ADD_WATCH = 106
UNIMPLEMENTED = -6


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        try:
            chunk = sock.recv(n - len(chunks))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.extend(chunk)
    return bytes(chunks)


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    old_server: bool = False  # answer multiRead and addWatch like ZooKeeper 3.4/3.5
    latency: float = 0.0  # seconds added before each client request is forwarded
    # Called on the forwarding thread with the opcode of each request about to be
    # forwarded, and of each request just forwarded.
    on_request: Callable[[int], None] | None = None
    on_forward: Callable[[int], None] | None = None
    multi_reads_refused: int = 0
    add_watches_refused: int = 0
    connections: int = 0
    # multiRead requests sent and not answered yet, and the most there ever were.
    most_multi_reads_in_flight: int = 0
    _multi_reads: set[int] = field(default_factory=set, init=False, repr=False)
    _listener: socket.socket = field(init=False, repr=False)
    _open: set[socket.socket] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _accepting: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._accepting.set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            self._accepting.wait()
            if self._closed:
                client.close()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
                self.connections += 1
            threading.Thread(
                target=self._client_to_server, args=(client, server), daemon=True
            ).start()
            threading.Thread(
                target=self._server_to_client, args=(server, client), daemon=True
            ).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        first = True
        while True:
            head = _recv_exact(client, 4)
            if head is None:
                break
            (length,) = struct.unpack(">i", head)
            body = _recv_exact(client, length)
            if body is None:
                break
            opcode: int | None = None
            if not first and len(body) >= 8:
                xid, opcode = struct.unpack(">ii", body[:8])
                if opcode == MULTI_READ and not self.old_server:
                    with self._lock:
                        self._multi_reads.add(xid)
                        self.most_multi_reads_in_flight = max(
                            self.most_multi_reads_in_flight, len(self._multi_reads)
                        )
                if opcode in (MULTI_READ, ADD_WATCH) and self.old_server:
                    if opcode == MULTI_READ:
                        self.multi_reads_refused += 1
                    else:
                        self.add_watches_refused += 1
                    reply = struct.pack(">iqi", xid, 0, UNIMPLEMENTED)
                    with suppress(OSError):
                        client.sendall(struct.pack(">i", len(reply)) + reply)
                    break
            first = False
            if opcode is not None and self.on_request is not None:
                self.on_request(opcode)
            if self.latency:
                time.sleep(self.latency)
            try:
                server.sendall(head + body)
            except OSError:
                break
            if opcode is not None and self.on_forward is not None:
                self.on_forward(opcode)
        self._close_pair(client, server)

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        first = True
        while True:
            head = _recv_exact(server, 4)
            if head is None:
                break
            (length,) = struct.unpack(">i", head)
            body = _recv_exact(server, length)
            if body is None:
                break
            if not first and len(body) >= 4:
                (xid,) = struct.unpack(">i", body[:4])
                with self._lock:
                    self._multi_reads.discard(xid)
            first = False
            try:
                client.sendall(head + body)
            except OSError:
                break
        self._close_pair(server, client)

    def _close_pair(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._open.discard(sock)
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """Drop every open connection (the client reconnects; its session lives on)."""
        with self._lock:
            socks = list(self._open)
        self._close_pair(*socks)

    @contextmanager
    def down(self) -> Iterator[None]:
        """Cut every connection and hold new ones back until the block ends."""
        self._accepting.clear()
        self.cut()
        try:
            yield
        finally:
            self._accepting.set()

    def close(self) -> None:
        self._closed = True
        self._accepting.set()
        self._listener.close()
        self.cut()
