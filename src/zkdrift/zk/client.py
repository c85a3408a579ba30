"""Connecting to ZooKeeper.

kazoo is untyped; this module and its siblings are the only places that
touch it, so the rest of zkdrift sees typed functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from zkdrift.errors import InvalidInputError, ZkConnectError

log = logging.getLogger(__name__)


class _AboveDebug(logging.Filter):
    """Drops kazoo's DEBUG (and lower) records: they print raw requests and
    responses, znode data and auth credentials included. Whatever logging
    the process configures (CLI -vv, Prefect, a notebook), those never pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# The logger every zkdrift kazoo client (and its connection) logs through.
_KAZOO_LOG = logging.getLogger("kazoo.client")
_KAZOO_LOG.addFilter(_AboveDebug())


@dataclass(frozen=True)
class ZkTarget:
    """Where a tree lives: hosts (optionally with a /chroot) and credentials."""

    hosts: str
    auth: str | None = None  # 'scheme:credential'; never logged
    connect_timeout: float = 10.0
    session_timeout: float = 30.0
    read_only: bool = False

    @property
    def safe_hosts(self) -> str:
        """The hosts string as it may be logged (it never holds credentials)."""
        return self.hosts


def parse_auth(auth: str) -> tuple[str, str]:
    scheme, sep, credential = auth.partition(":")
    if not sep or not scheme or not credential:
        raise InvalidInputError("ZooKeeper auth must look like 'scheme:credential'")
    return scheme, credential


def validate_hosts(hosts: str) -> str:
    if not hosts or not hosts.strip():
        raise InvalidInputError(
            "ZooKeeper hosts are empty (expected host:port[,host:port][/chroot])"
        )
    servers = hosts.split("/", 1)[0]
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host and not port:
            raise InvalidInputError(f"invalid ZooKeeper host {server!r} in {hosts!r}")
        if ":" in server and not port.isdigit():
            raise InvalidInputError(f"invalid port in ZooKeeper host {server!r}")
    return hosts


def connect(target: ZkTarget) -> KazooClient:
    """Start a session or fail within ``connect_timeout`` with a clear error."""
    validate_hosts(target.hosts)
    auth_data = [parse_auth(target.auth)] if target.auth else None
    client = KazooClient(
        hosts=target.hosts,
        timeout=target.session_timeout,
        auth_data=auth_data,
        read_only=target.read_only,
        connection_retry=KazooRetry(max_tries=-1, delay=0.2, max_delay=2.0),
        command_retry=KazooRetry(max_tries=3, delay=0.2, max_delay=2.0),
        logger=_KAZOO_LOG,
    )
    try:
        client.start(timeout=target.connect_timeout)
    except KazooTimeoutError as exc:
        _close_quietly(client)
        raise ZkConnectError(
            f"could not connect to ZooKeeper at {target.safe_hosts} "
            f"within {target.connect_timeout:g}s"
        ) from exc
    except Exception as exc:
        _close_quietly(client)
        raise ZkConnectError(
            f"could not connect to ZooKeeper at {target.safe_hosts}: {exc}"
        ) from exc
    log.info("connected to ZooKeeper at %s", target.safe_hosts)
    return client


def _close_quietly(client: Any) -> None:
    try:
        client.stop()
        client.close()
    except Exception:  # pragma: no cover - best effort on a failed start
        log.debug("error while closing a failed ZooKeeper client", exc_info=True)


def close(client: KazooClient) -> None:
    _close_quietly(client)


@contextmanager
def session(target: ZkTarget) -> Iterator[KazooClient]:
    client = connect(target)
    try:
        yield client
    finally:
        close(client)
