"""When a failed task is retried: transient ZooKeeper and database errors only.

A lost connection, an expired session or a database that dropped the link
is worth another attempt after a pause. Everything else (an unknown tree, a
refused plan, a bug) fails at once with its own message: retrying a logic
error only delays the bad news.
"""

from __future__ import annotations

from typing import Any

from kazoo.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from sqlalchemy.exc import DisconnectionError, OperationalError

from zkdrift.errors import ZkConnectError
from zkdrift.gitsource import GitUnreachableError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionLoss,
    ConnectionClosedError,
    SessionExpiredError,
    OperationTimeoutError,
    KazooTimeoutError,
    ZkConnectError,
    OperationalError,
    DisconnectionError,
    GitUnreachableError,
)

# Attempts after the first, and the pause before each: long enough for a
# ZooKeeper leader election or a database failover to finish.
RETRIES = 3
RETRY_DELAYS: list[float] = [2.0, 10.0, 30.0]
RETRY_JITTER = 0.2


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc`` or anything in its cause/context chain is a transient error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TRANSIENT_ERRORS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def retry_on_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure was transient."""
    try:
        state.result()
    except BaseException as exc:
        return is_transient(exc)
    return False


def retry_options() -> dict[str, Any]:
    """The ``@task`` keyword arguments shared by every I/O task."""
    return {
        "retries": RETRIES,
        "retry_delay_seconds": list(RETRY_DELAYS),
        "retry_jitter_factor": RETRY_JITTER,
        "retry_condition_fn": retry_on_transient,
    }
