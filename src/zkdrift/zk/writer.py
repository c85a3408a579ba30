"""The compare-and-set writer: a plan's ops as ZooKeeper transactions.

- ``set`` and ``delete`` carry the version they were planned against, so a
  node that moved since the plan fails its transaction instead of being
  overwritten; ``create`` fails when the node exists.
- Ops go in ``multi`` transactions (:func:`zkdrift.plan.batch_ops`), each
  well under ``jute.maxbuffer`` and all-or-nothing. The plan's order is kept:
  parents are created before children, children deleted before parents.
- ``setACL`` cannot be part of a ``multi``; each one is sent on its own,
  versioned against the ACL version, right after checking that the lock
  node still exists and belongs to this session.
- Every ``create`` carries an explicit ACL: an op without one is refused
  before anything is sent (kazoo would otherwise make the node open to
  anyone).
- Each transaction is fenced by the lock: with ``fence`` (the path of the
  caller's lock node) it starts with a ``check`` that the node exists, so a
  batch commits only while the lock is held. A session that expired, or a
  lock that ``zkdrift lock break`` removed, rolls the batch back even if
  the connection watch has not said so yet.
- One batch at a time: the next is sent only when the previous one
  committed. A failed batch stops the write, so nothing is sent after a
  conflict, and the connection watch is consulted before every send, so
  nothing is sent after SUSPENDED (unless the session comes back) or LOST.
- ``stop`` is polled before every send: once it says so (SIGTERM), the
  batch in flight has finished and nothing more is sent.
- ``journal`` hears every op's fate as it is decided, so the caller can
  record it before the next step: every op ``not-sent`` first, a batch
  ``unknown`` just before it is sent, then what became of it. A process
  killed at any moment leaves a record that is true, if not final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.security import ACL, Id

from zkdrift.model import Op, OpKind, OpStatus
from zkdrift.plan import batch_ops
from zkdrift.zk.lock import ConnectionLostError, ConnectionWatch

# Well under jute.maxbuffer (1 MiB by default): a multi request also carries
# framing, and the server needs headroom for its own response.
DEFAULT_BATCH_BYTES = 512 * 1024
DEFAULT_BATCH_OPS = 1000

# Errors that mean "the node is not as planned": somebody else moved it.
_CONFLICTS = (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError)


@dataclass(frozen=True)
class OpOutcome:
    op: Op
    status: OpStatus
    error: str | None = None


@dataclass(frozen=True)
class BatchEvent:
    """Passed to the ``between_batches`` hook after each committed batch."""

    index: int  # 0-based index of the batch that just committed
    total: int
    ops_applied: int
    client: Any
    watch: ConnectionWatch | None


# Told ``(first op index, outcomes of the ops from there)`` as the write goes.
Journal = Callable[[int, Sequence[OpOutcome]], None]

IN_FLIGHT = "sent; the answer has not arrived"


@dataclass(frozen=True)
class WriteReport:
    outcomes: tuple[OpOutcome, ...]
    batches_total: int
    batches_committed: int
    conflicts: tuple[str, ...]  # paths whose CAS failed: they moved since the plan
    error: str | None
    aborted: bool  # stopped by the connection (SUSPENDED/LOST), not by a conflict
    stopped: bool = False  # ``stop`` asked for it (SIGTERM); nothing failed

    @property
    def ops_applied(self) -> int:
        return sum(1 for o in self.outcomes if o.status == OpStatus.APPLIED)

    @property
    def ok(self) -> bool:
        return self.error is None


def _kazoo_acl(op: Op) -> list[Any] | None:
    if op.acl is None:
        return None
    return [ACL(a.perms, Id(a.scheme, a.id)) for a in op.acl]


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    return name if not str(exc) else f"{name}: {exc}"


def _segments(ops: Sequence[Op], max_bytes: int, max_ops: int) -> list[list[Op]]:
    """Transactions of consecutive data ops; each setACL alone."""
    out: list[list[Op]] = []
    run: list[Op] = []
    for op in ops:
        if op.kind is OpKind.SET_ACL:
            if run:
                out.extend(batch_ops(run, max_bytes=max_bytes, max_ops=max_ops))
                run = []
            out.append([op])
        else:
            run.append(op)
    if run:
        out.extend(batch_ops(run, max_bytes=max_bytes, max_ops=max_ops))
    return out


def _send(client: KazooClient, batch: list[Op], fence: str | None) -> Any:
    if len(batch) == 1 and batch[0].kind is OpKind.SET_ACL:
        op = batch[0]
        version = -1 if op.expected_version is None else op.expected_version
        return client.set_acls_async(op.path, _kazoo_acl(op), version)
    txn = client.transaction()
    if fence is not None:
        txn.check(fence, -1)  # -1: any version; fails when the node is gone
    for op in batch:
        if op.kind is OpKind.CREATE:
            txn.create(op.path, op.data or b"", acl=_kazoo_acl(op))
        elif op.kind is OpKind.SET:
            version = -1 if op.expected_version is None else op.expected_version
            txn.set_data(op.path, op.data or b"", version=version)
        elif op.kind is OpKind.DELETE:
            version = -1 if op.expected_version is None else op.expected_version
            txn.delete(op.path, version=version)
        else:  # pragma: no cover - _segments sends ACL ops alone
            raise ValueError(f"op kind {op.kind} cannot go in a transaction")
    return txn.commit_async()


def write_ops(
    client: KazooClient,
    ops: Sequence[Op],
    *,
    watch: ConnectionWatch | None = None,
    suspend_wait: float = 10.0,
    max_bytes: int = DEFAULT_BATCH_BYTES,
    max_ops: int = DEFAULT_BATCH_OPS,
    timeout: float = 60.0,
    between_batches: Callable[[BatchEvent], None] | None = None,
    progress: list[OpOutcome] | None = None,
    fence: str | None = None,
    stop: Callable[[], bool] | None = None,
    journal: Journal | None = None,
) -> WriteReport:
    """Send ``ops`` in order as CAS transactions; stop at the first failure.

    Never raises for a conflict, a lost connection or a request that timed
    out: the report says which ops were applied, which batch failed and why,
    and which were not sent. Anything else that interrupts the write (Ctrl-C,
    a failing ``between_batches`` hook) propagates; before it does,
    ``progress`` (when given) is filled with every op's outcome so far: the
    committed batches applied, the one in flight unknown, the rest not sent.
    """
    open_creates = [op.path for op in ops if op.kind is OpKind.CREATE and op.acl is None]
    if open_creates:
        raise ValueError(f"refusing to create nodes without an ACL: {', '.join(open_creates[:5])}")
    batches = _segments(ops, max_bytes, max_ops)
    outcomes: list[OpOutcome] = []
    in_flight: list[Op] = []
    if journal is not None:
        journal(0, [OpOutcome(op, OpStatus.NOT_SENT) for op in _flatten(batches)])
    try:
        return _write(
            client,
            batches,
            outcomes,
            in_flight,
            watch=watch,
            suspend_wait=suspend_wait,
            timeout=timeout,
            between_batches=between_batches,
            fence=fence,
            stop=stop,
            journal=journal,
        )
    except BaseException as exc:
        if progress is not None:
            done = list(outcomes)
            note = f"interrupted while the transaction was in flight ({_describe(exc)})"
            done.extend(OpOutcome(op, OpStatus.UNKNOWN, note) for op in in_flight)
            done.extend(OpOutcome(op, OpStatus.NOT_SENT) for op in _flatten(batches)[len(done) :])
            progress[:] = done
        raise


def _write(
    client: KazooClient,
    batches: list[list[Op]],
    outcomes: list[OpOutcome],
    in_flight: list[Op],
    *,
    watch: ConnectionWatch | None,
    suspend_wait: float,
    timeout: float,
    between_batches: Callable[[BatchEvent], None] | None,
    fence: str | None,
    stop: Callable[[], bool] | None,
    journal: Journal | None,
) -> WriteReport:
    conflicts: list[str] = []
    error: str | None = None
    aborted = stopped = False
    committed = journaled = 0
    timed_out = client.handler.timeout_exception
    for index, batch in enumerate(batches):
        if stop is not None and stop():
            error, stopped = f"stopped before batch {index + 1} of {len(batches)} was sent", True
            break
        try:
            if watch is not None:
                watch.check(suspend_wait)
        except ConnectionLostError as exc:
            error, aborted = str(exc), True
            break
        if fence is not None and batch[0].kind is OpKind.SET_ACL and not _holds(client, fence):
            # setACL cannot join a transaction with the lock check: check first.
            error, aborted = _fence_lost(fence, index, len(batches), "not sent"), True
            break
        in_flight[:] = batch
        first = len(outcomes)
        if journal is not None:
            journal(first, [OpOutcome(op, OpStatus.UNKNOWN, IN_FLIGHT) for op in batch])
        try:
            result = _send(client, batch, fence).get(timeout=timeout)
        except (ConnectionLoss, SessionExpiredError, ConnectionLostError, timed_out) as exc:
            # The request may or may not have reached the server; the
            # transaction is atomic either way, and a fresh plan will tell.
            in_flight.clear()
            what = "timed out" if isinstance(exc, timed_out) else "the connection dropped"
            error = (
                f"{what} while batch {index + 1} of {len(batches)} was in"
                f" flight ({_describe(exc)}); it was applied entirely or not at all"
            )
            aborted = True
            outcomes.extend(OpOutcome(op, OpStatus.UNKNOWN, error) for op in batch)
            break
        except _CONFLICTS as exc:
            in_flight.clear()
            # A lone setACL that failed its version check.
            conflicts.append(batch[0].path)
            error = f"{batch[0].path} moved since the plan ({_describe(exc)})"
            outcomes.append(OpOutcome(batch[0], OpStatus.FAILED, _describe(exc)))
            break
        except KazooException as exc:
            in_flight.clear()
            error = f"batch {index + 1} of {len(batches)} failed: {_describe(exc)}"
            outcomes.extend(OpOutcome(op, OpStatus.FAILED, _describe(exc)) for op in batch)
            break
        in_flight.clear()
        if fence is not None and isinstance(result, list) and len(result) == len(batch) + 1:
            fenced, result = result[0], result[1:]
            if isinstance(fenced, Exception) and not isinstance(fenced, RolledBackError):
                outcomes.extend(OpOutcome(op, OpStatus.ROLLED_BACK, None) for op in batch)
                error = _fence_lost(fence, index, len(batches), "rolled back")
                aborted = True
                break
        failures = (
            [(op, r) for op, r in zip(batch, result, strict=False) if isinstance(r, Exception)]
            if isinstance(result, list)
            else []
        )
        if failures:
            culprits = [(op, r) for op, r in failures if not isinstance(r, RolledBackError)]
            for op, r in zip(batch, result, strict=False):
                if isinstance(r, RolledBackError):
                    outcomes.append(OpOutcome(op, OpStatus.ROLLED_BACK, None))
                elif isinstance(r, Exception):
                    outcomes.append(OpOutcome(op, OpStatus.FAILED, _describe(r)))
                else:  # pragma: no cover - a failed multi applies nothing
                    outcomes.append(OpOutcome(op, OpStatus.ROLLED_BACK, None))
            conflicts.extend(op.path for op, r in culprits if isinstance(r, _CONFLICTS))
            first_op, first_err = culprits[0] if culprits else failures[0]
            error = (
                f"batch {index + 1} of {len(batches)} was rolled back: {first_op.kind}"
                f" {first_op.path} failed ({_describe(first_err)})"
            )
            break
        outcomes.extend(OpOutcome(op, OpStatus.APPLIED) for op in batch)
        committed += 1
        if journal is not None:
            journal(first, outcomes[first:])
            journaled = len(outcomes)
        if between_batches is not None:
            between_batches(BatchEvent(index, len(batches), len(outcomes), client, watch))
    if journal is not None and len(outcomes) > journaled:
        journal(journaled, outcomes[journaled:])  # the batch that stopped the write
    sent = len(outcomes)
    outcomes.extend(OpOutcome(op, OpStatus.NOT_SENT) for op in _flatten(batches)[sent:])
    return WriteReport(
        outcomes=tuple(outcomes),
        batches_total=len(batches),
        batches_committed=committed,
        conflicts=tuple(conflicts),
        error=error,
        aborted=aborted,
        stopped=stopped,
    )


def _holds(client: KazooClient, fence: str) -> bool:
    """True when the lock node exists and belongs to this client's session."""
    try:
        stat = client.exists(fence)
    except KazooException:
        return False
    session_id = (client.client_id or (None,))[0]
    return stat is not None and stat.ephemeralOwner == session_id


def _fence_lost(fence: str, index: int, total: int, what: str) -> str:
    return (
        f"the lock node {fence} is gone (session expired or lock broken):"
        f" batch {index + 1} of {total} was {what} and nothing more was sent"
    )


def _flatten(batches: list[list[Op]]) -> list[Op]:
    return [op for batch in batches for op in batch]
