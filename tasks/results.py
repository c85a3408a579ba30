"""What tasks hand to each other and to flows: small frozen dataclasses.

Nothing here holds a znode's bytes, a connection or a session: only names,
ids, counts and values as display text that went through the redactor
(secrets as placeholders), so results pickle, cache and show in the Prefect
UI without leaking a secret.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from zkdrift import vocabulary
from zkdrift.redact import Redactor
from zkdrift.store.snapshots import SnapshotResult


@dataclass(frozen=True)
class TreeRef:
    """A registered tree as flows see it: its name and its reconcile policy."""

    name: str
    applies_by_policy: bool = False  # the tree's policy lets scheduled runs apply
    hosts: str = ""
    root: str = "/"
    desired_source: str | None = None  # the tree's Git source (credentials masked), if any


# Values longer than this are cut in tables (the HTML report shows them whole).
VALUE_CHARS = 160


def shown_value(redactor: Redactor, path: str, data: bytes | None) -> str:
    """A value as a table cell: display text (secrets as their placeholder), one line, cut."""
    if data is None:
        return ""
    text = " ".join(redactor.render(path, data).split())
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


@dataclass(frozen=True)
class DriftRow:
    """One drifted path as people read it: desired and live as display text.

    Values pass through the redactor first: a secret path shows its
    placeholder (``<redacted hmac:…>``), never the value.
    """

    path: str
    kind: str  # vocabulary.DRIFT_KINDS: changed, missing live, live only, ACL changed
    classification: str  # drift, pending, conflict
    desired: str
    live: str

    def as_table_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "who moved": self.classification,
            "desired": self.desired,
            "live": self.live,
        }


@dataclass(frozen=True)
class SyncSummary:
    """A sync of a tree's desired source: the commit, and the revision it became (if new)."""

    tree: str
    source: str  # credentials masked
    commit: str
    revision: int | None  # None: the commit was already synced
    origin: str = ""  # "commit 1a2b3c4d5e6f by Ann <ann@x>: subject"

    @property
    def changed(self) -> bool:
        return self.revision is not None


@dataclass(frozen=True)
class DriftSummary:
    tree: str
    run_id: int | None
    drift: int
    pending: int
    conflict: int
    rows: tuple[DriftRow, ...] = field(default=())
    since: dt.datetime | None = None  # when the oldest open difference was first seen
    observed: bool = False  # no desired state: the tree is only observed
    # Where the desired revision checked came from: "desired revision 4: commit 1a2b3c… by
    # Ann <ann@x>: subject (from https://…//app?ref=main)", or its source word.
    desired_from: str | None = None

    @property
    def total(self) -> int:
        return self.drift + self.pending + self.conflict

    @property
    def has_differences(self) -> bool:
        return self.total > 0

    @property
    def status(self) -> str:
        """``in sync``, ``4 drifted since 12:48 UTC`` or ``observed only``."""
        return (
            vocabulary.OBSERVED_ONLY
            if self.observed
            else vocabulary.drift_status(self.total, self.since)
        )

    @property
    def headline(self) -> str:
        if self.observed:
            return vocabulary.observed_headline(self.tree)
        return vocabulary.headline(self.tree, self.total, self.since)


@dataclass(frozen=True)
class ReconcileSummary:
    """A plan (dry run) or an apply: how many operations, which paths, what happened."""

    tree: str
    mode: str  # "dry-run" or "apply"
    operations: int
    applied: int
    plan_id: int | None = None
    apply_id: int | None = None
    ops: tuple[str, ...] = ()  # "set /path", "create /path": kinds and paths, never values
    outcome: str = ""


@dataclass(frozen=True)
class ReportSummary:
    """A rendered report: the file, and the link people open (served over HTTP)."""

    tree: str
    path: str
    url: str


@dataclass(frozen=True)
class TreeOutcome:
    """Everything the pipeline did for one tree, including where it stopped."""

    tree: str
    snapshot: SnapshotResult | None = None
    sync: SyncSummary | None = None
    drift: DriftSummary | None = None
    reconcile: ReconcileSummary | None = None
    report: ReportSummary | None = None
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reconciled(self) -> bool:
        """This run applied the desired state to live."""
        rec = self.reconcile
        return rec is not None and rec.mode == "apply" and rec.outcome == "applied"

    @property
    def status(self) -> str:
        """One line per tree for run summaries."""
        if not self.ok:
            return f"failed at {self.failed_step}"
        if self.drift is None:
            return "done"
        if self.drift.has_differences and self.reconciled and self.reconcile is not None:
            return f"{self.drift.status}; reconciled ({self.reconcile.applied} applied)"
        return self.drift.status
