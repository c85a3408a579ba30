"""A three-node ZooKeeper ensemble on loopback, for tests that kill its members.

Each member is a :class:`~zkdrift.devtools.zkserver.ZooKeeperServer` with its own
data directory, client port, ``server.N`` lines for the peer and election ports
of all three, and its ``myid``. Test mode (no fsync) and the suite's superuser,
as for the single server in :mod:`tests.support.zk`.

Roles come from the ``srvr`` four-letter word: ``Mode: leader`` or
``Mode: follower``, or no mode at all while a member is not serving (it lost
the quorum, or it is still joining). Every wait here is on such a condition.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl_credential

from tests.support.zk import SUPER_AUTH
from zkdrift.devtools.zkserver import ZooKeeperServer, free_port

_MODE = re.compile(r"^Mode: (\w+)", re.MULTILINE)


def four_letter(port: int, word: str = "srvr", timeout: float = 1.0) -> str | None:
    """A four-letter word's answer from the member on ``port`` (None when it is down)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode(errors="replace")


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 30.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Ensemble:
    members: tuple[ZooKeeperServer, ...]

    @classmethod
    def create(cls, base: Path, size: int = 3) -> Ensemble:
        ports = tuple((free_port(), free_port(), free_port()) for _ in range(size))
        superuser = "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + (
            make_digest_acl_credential(*SUPER_AUTH[1].split(":", 1))
        )
        members = tuple(
            ZooKeeperServer(
                data_dir=base / f"member{i}",
                port=ports[i - 1][0],
                test_mode=True,
                server_id=i,
                ensemble=ports,
                jvm_flags=(superuser,),
            )
            for i in range(1, size + 1)
        )
        return cls(members)

    # -- state ------------------------------------------------------------------------

    def name(self, member: ZooKeeperServer) -> str:
        return f"member {member.server_id} (port {member.port})"

    def is_running(self, member: ZooKeeperServer) -> bool:
        return member.process is not None and member.process.poll() is None

    def running(self) -> list[ZooKeeperServer]:
        return [m for m in self.members if self.is_running(m)]

    def mode(self, member: ZooKeeperServer) -> str | None:
        """'leader' or 'follower' while the member serves; None while it does not."""
        answer = four_letter(member.port)
        found = _MODE.search(answer or "")
        return found.group(1) if found else None

    def _roles(self, members: list[ZooKeeperServer]) -> dict[int, str | None]:
        return {m.port: self.mode(m) for m in members}

    def _serving(self) -> ZooKeeperServer | None:
        """The leader, when every running member serves: one leader, the rest followers."""
        running = self.running()
        roles = self._roles(running)
        leaders = [m for m in running if roles[m.port] == "leader"]
        followers = [m for m in running if roles[m.port] == "follower"]
        quorum = len(running) * 2 > len(self.members)
        if quorum and len(leaders) == 1 and len(followers) == len(running) - 1:
            return leaders[0]
        return None

    def wait_quorum(self, timeout: float = 30.0) -> ZooKeeperServer:
        """Wait until every running member serves (one leader, the others following)
        and return the leader."""
        found: list[ZooKeeperServer] = []

        def serving() -> bool:
            leader = self._serving()
            if leader is not None:
                found.append(leader)
            return leader is not None

        wait_for(serving, f"a quorum of {len(self.running())} member(s)", timeout)
        return found[-1]

    def leader(self) -> ZooKeeperServer:
        return self.wait_quorum()

    def followers(self) -> list[ZooKeeperServer]:
        leader = self.wait_quorum()
        return [m for m in self.running() if m is not leader]

    def member_on(self, port: int) -> ZooKeeperServer:
        return next(m for m in self.members if m.port == port)

    # -- faults -----------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ZooKeeperServer:
        for member in self.members:
            member.start()
        return self.wait_quorum(timeout)

    def kill(self, *members: ZooKeeperServer) -> None:
        """Kill -9, the way a crashed server goes away."""
        for member in members:
            member.kill()

    def restart(self, *members: ZooKeeperServer, timeout: float = 30.0) -> None:
        """Start ``members`` again (they must be down) and wait until they serve."""
        for member in members:
            member.start()
        for member in members:
            member.wait_ready(timeout)

    def restore(self, timeout: float = 60.0) -> ZooKeeperServer:
        """Every member up and serving again (after a test killed some); the leader."""
        down = [m for m in self.members if not self.is_running(m)]
        for member in down:
            member.kill()  # forget a process that died on its own
            member.start()
        return self.wait_quorum(timeout)

    def kill_all(self) -> None:
        for member in self.members:
            member.kill()

    # -- clients ----------------------------------------------------------------------

    def hosts(self, *members: ZooKeeperServer, chroot: str = "") -> str:
        """The connect string of ``members`` (all of them by default), with ``chroot``."""
        chosen = members or self.members
        return ",".join(m.connect_string for m in chosen) + chroot


def connected_port(client: KazooClient) -> int:
    """The client port of the member ``client`` is connected to now.

    kazoo does not say which host of the connect string it picked; its
    connection's socket does (a private attribute, read only).
    """
    port: int = client._connection._socket.getpeername()[1]
    return port


@contextmanager
def client_states(client: KazooClient) -> Iterator[list[str]]:
    """The connection states ``client`` goes through during the block, in order.

    A client that loses its server and finds another one at once is SUSPENDED
    and CONNECTED again within milliseconds: the list keeps what a flag would
    already have forgotten.
    """
    states: list[str] = []

    def record(state: str) -> None:
        states.append(state)

    client.add_listener(record)
    try:
        yield states
    finally:
        client.remove_listener(record)
