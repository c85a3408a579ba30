"""Connecting to ZooKeeper.

kazoo is untyped; this module and its siblings are the only places that
touch it, so the rest of zkdrift sees typed functions.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, ConnectionLoss, NoAuthError, SessionExpiredError
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
class TlsConfig:
    """TLS for a connection: files to load, and whether to verify the server."""

    ca: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = field(default=None, repr=False)  # never logged
    verify: bool = True


@dataclass(frozen=True)
class ZkTarget:
    """Where a tree lives: hosts (optionally with a /chroot), credentials and TLS."""

    hosts: str
    auth: str | None = field(default=None, repr=False)  # 'scheme:credential'; never logged
    connect_timeout: float = 10.0
    session_timeout: float = 30.0
    read_only: bool = False
    tls: TlsConfig | None = None

    @property
    def safe_hosts(self) -> str:
        """The hosts string as it may be logged (it never holds credentials)."""
        return self.hosts + (" (TLS)" if self.tls is not None else "")


def parse_auth(auth: str) -> tuple[str, str]:
    scheme, sep, credential = auth.partition(":")
    if not sep or not scheme or not credential:
        raise InvalidInputError("ZooKeeper auth must look like 'scheme:credential'")
    return scheme, credential


def _credentials(auth: str | None) -> dict[str, Any]:
    """kazoo's arguments for ``auth``: ``digest:user:password`` is added to the session
    (add_auth); ``sasl:user:password`` authenticates with SASL DIGEST-MD5."""
    if not auth:
        return {}
    scheme, credential = parse_auth(auth)
    if scheme == "sasl":
        user, sep, password = credential.partition(":")
        if not sep or not user or not password:
            raise InvalidInputError("SASL auth must look like 'sasl:user:password'")
        return {"sasl_options": {"mechanism": "DIGEST-MD5", "username": user, "password": password}}
    return {"auth_data": [(scheme, credential)]}


def _tls(tls: TlsConfig | None) -> dict[str, Any]:
    if tls is None:
        return {}
    for name, path in (("CA", tls.ca), ("certificate", tls.certfile), ("key", tls.keyfile)):
        if path is not None and not os.access(path, os.R_OK):
            raise InvalidInputError(f"cannot read the TLS {name} file {path}")
    return {
        "use_ssl": True,
        "ca": tls.ca,
        "certfile": tls.certfile,
        "keyfile": tls.keyfile,
        "keyfile_password": tls.key_password,
        "verify_certs": tls.verify,
        "check_hostname": tls.verify,
    }


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


_KNOWN_ERRORS: dict[type[BaseException], str] = {
    NoAuthError: "ZooKeeper refused the request: not authorised (NoAuth). Check the"
    " credentials the tree connects with (tree add --auth-env, ZKDRIFT_ZK_AUTH, TLS)"
    " and the ACL of the node, or of the lock root ZKDRIFT_LOCK_ROOT",
    AuthFailedError: "ZooKeeper rejected the credentials (AuthFailed)",
    ConnectionLoss: "the connection to ZooKeeper was lost and did not come back in time",
    SessionExpiredError: "the ZooKeeper session expired",
    KazooTimeoutError: "ZooKeeper did not answer in time",
}


def describe_error(exc: BaseException) -> str:
    """One line for a kazoo error that reached the top: what happened, what to check."""
    for kind, text in _KNOWN_ERRORS.items():
        if isinstance(exc, kind):
            return text
    return f"ZooKeeper error: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")


def scrub(text: str, target: ZkTarget) -> str:
    """``text`` with the target's credentials and key password masked."""
    secrets = [target.tls.key_password if target.tls else None]
    if target.auth:
        _scheme, _sep, credential = target.auth.partition(":")
        secrets += [target.auth, credential, credential.rpartition(":")[2]]
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def connect(target: ZkTarget) -> KazooClient:
    """Start a session or fail within ``connect_timeout`` with a clear error.

    A connection that drops right after it was made (its server lost the
    quorum: an election) is waited out within ``connect_timeout`` too.
    """
    validate_hosts(target.hosts)
    client = KazooClient(
        hosts=target.hosts,
        timeout=target.session_timeout,
        read_only=target.read_only,
        **_credentials(target.auth),
        **_tls(target.tls),
        connection_retry=KazooRetry(max_tries=-1, delay=0.2, max_delay=2.0),
        command_retry=KazooRetry(max_tries=3, delay=0.2, max_delay=2.0),
        logger=_KAZOO_LOG,
    )
    deadline = time.monotonic() + target.connect_timeout
    try:
        try:
            client.start(timeout=target.connect_timeout)
        except ConnectionLoss:
            # Dropped before kazoo's first request (its chroot check) was answered;
            # the client reconnects by itself.
            _wait_connected(client, deadline)
    except KazooTimeoutError as exc:
        _close_quietly(client)
        raise ZkConnectError(
            f"could not connect to ZooKeeper at {target.safe_hosts} "
            f"within {target.connect_timeout:g}s"
        ) from exc
    except Exception as exc:
        _close_quietly(client)
        raise ZkConnectError(
            f"could not connect to ZooKeeper at {target.safe_hosts}:"
            f" {scrub(f'{type(exc).__name__}: {exc}', target)}"
        ) from None
    log.info("connected to ZooKeeper at %s", target.safe_hosts)
    return client


def _wait_connected(client: KazooClient, deadline: float) -> None:
    while not client.connected:
        if time.monotonic() >= deadline:
            raise KazooTimeoutError("Connection time-out")
        time.sleep(0.05)


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
