"""The words and formats people read, the same in the CLI, the reports and Prefect.

- Kinds of drift (desired against live): **changed**, **missing live**
  (desired has the path, live does not), **live only** (live has a path
  desired lacks), **ACL changed**.
- Kinds of change in live's history (one snapshot to the next): **created**,
  **deleted**, **changed**, **ACL changed**.
- Times: UTC to the second with the zone named (``2026-12-01 14:12:05 UTC``)
  for people, ISO 8601 with an offset for machines; ages as ``3 h 12 min``.
- The verdict: **in sync**, or **N drifted since TIME**, with the next step.
"""

from __future__ import annotations

import datetime as dt

from zkdrift.model import ChangeKind, DriftClass

# Desired against live. ``DriftItem.kind`` is what an apply would do to live:
# ADDED creates a node live lacks, REMOVED deletes one desired lacks.
DRIFT_KINDS: dict[ChangeKind, str] = {
    ChangeKind.DATA_CHANGED: "changed",
    ChangeKind.ADDED: "missing live",
    ChangeKind.REMOVED: "live only",
    ChangeKind.ACL_CHANGED: "ACL changed",
}

# One snapshot of live against the next.
HISTORY_KINDS: dict[ChangeKind, str] = {
    ChangeKind.ADDED: "created",
    ChangeKind.REMOVED: "deleted",
    ChangeKind.DATA_CHANGED: "changed",
    ChangeKind.ACL_CHANGED: "ACL changed",
}

# Who moved: live, desired, or both, since zkdrift last applied.
DRIFT_CLASSES: dict[DriftClass, str] = {
    DriftClass.DRIFT: "drift",  # live changed outside zkdrift
    DriftClass.PENDING: "pending",  # desired changed, not applied yet
    DriftClass.CONFLICT: "conflict",  # both changed
}

IN_SYNC = "in sync"


def drift_kind(kind: ChangeKind | str) -> str:
    """The drift label of a change kind (``"added"`` is ``"missing live"``)."""
    return DRIFT_KINDS[ChangeKind(kind)]


def history_kind(kind: ChangeKind | str) -> str:
    """The history label of a change kind (``"added"`` is ``"created"``)."""
    return HISTORY_KINDS[ChangeKind(kind)]


def as_utc(when: dt.datetime) -> dt.datetime:
    """``when`` as an aware UTC time (the store keeps naive UTC)."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def utc_text(when: dt.datetime | None) -> str:
    """``2026-12-01 14:12:05 UTC``; empty for no time."""
    if when is None:
        return ""
    return as_utc(when).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_time_text(when: dt.datetime) -> str:
    """``14:12 UTC`` when ``when`` is today (UTC), else ``2026-11-30 14:12 UTC``."""
    aware = as_utc(when)
    if aware.date() == dt.datetime.now(dt.UTC).date():
        return aware.strftime("%H:%M UTC")
    return aware.strftime("%Y-%m-%d %H:%M UTC")


def iso(when: dt.datetime | None) -> str | None:
    """ISO 8601 with the UTC offset, to the second (for JSON)."""
    return None if when is None else as_utc(when).isoformat(timespec="seconds")


def age_text(seconds: float | dt.timedelta | None) -> str:
    """``45 s``, ``12 min``, ``3 h 12 min``, ``2 d 4 h``; empty for no age."""
    if seconds is None:
        return ""
    total = int(seconds.total_seconds() if isinstance(seconds, dt.timedelta) else seconds)
    total = max(total, 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def drift_status(count: int, since: dt.datetime | None) -> str:
    """``in sync`` or ``4 drifted since 12:48 UTC``."""
    if count == 0:
        return IN_SYNC
    when = f" since {utc_time_text(since)}" if since is not None else ""
    return f"{count} drifted{when}"


def next_step(tree: str) -> str:
    """What to run about drift: push desired to live, or accept live as desired."""
    return f"run `zkdrift apply {tree} --yes` or `zkdrift adopt {tree}`"


def headline(tree: str, count: int, since: dt.datetime | None) -> str:
    """``OUT OF SYNC: 4 paths since 12:48 UTC; run ...`` or ``IN SYNC: ...``."""
    if count == 0:
        return f"IN SYNC: live {tree} equals its desired state"
    noun = "path" if count == 1 else "paths"
    when = f" since {utc_time_text(since)}" if since is not None else ""
    return f"OUT OF SYNC: {count} {noun}{when}; {next_step(tree)}"


OBSERVED_ONLY = "observed only"  # a tree with no desired state: history, no drift


def observed_only(tree: str) -> str:
    """What to say of a tree without a desired state, and how to manage it."""
    return (
        f"no desired state: this tree is observed only; to manage it, run `zkdrift adopt {tree}` "
        f"(accept live as desired) or `zkdrift desired import {tree} FILE`"
    )


def observed_line(tree: str) -> str:
    """The one log line said about a tree with no desired state."""
    return f"tree {tree}: {observed_only(tree)}"


def observed_headline(tree: str) -> str:
    """``NO DESIRED STATE: this tree is observed only; to manage it, run ...``."""
    return "NO DESIRED STATE: " + observed_only(tree).split(": ", 1)[1]


def unchecked_headline(tree: str, revision: int) -> str:
    """``NOT CHECKED: ...``: a desired state, no drift check yet, and what to run."""
    return (
        f"NOT CHECKED: {tree} has a desired state (revision {revision}) but no drift check "
        f"yet; run `zkdrift diff {tree}`"
    )


def origin_text(
    source: str,
    author: str,
    commit: str | None,
    commit_author: str | None,
    commit_message: str | None,
    override: bool,
) -> str:
    """Where a desired revision came from, in one line: ``commit 1a2b3c4d5e6f by Ann
    <ann@example.com>: subject`` for a revision synced from Git, ``override by bob (set)``
    for a hand-made change to a Git-sourced tree, else its source word (``import``)."""
    if commit:
        subject = (commit_message or "").splitlines()[0] if commit_message else ""
        return f"commit {commit[:12]} by {commit_author or '?'}" + (
            f": {subject}" if subject else ""
        )
    if override:
        return f"override by {author} ({source})"
    return source


def write_verb(direction: object) -> str:
    """How the audit's direction reads: ``adopt``, ``restore`` and ``promote`` by name,
    any other push ``apply``."""
    return str(direction) if direction in ("adopt", "restore", "promote") else "apply"
