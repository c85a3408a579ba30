"""What tasks hand to each other and to flows: small frozen dataclasses, no values.

Nothing here holds a znode's bytes, a connection or a session: only names,
ids, counts, sizes and short digests, so results pickle, cache and show in
the Prefect UI without leaking a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zkdrift.redact import Redactor
from zkdrift.store.snapshots import SnapshotResult

DIGEST_CHARS = 12


@dataclass(frozen=True)
class TreeRef:
    """A registered tree as flows see it: its name and its reconcile policy."""

    name: str
    applies_by_policy: bool = False  # the tree's policy lets scheduled runs apply
    hosts: str = ""
    root: str = "/"


@dataclass(frozen=True)
class DriftRow:
    """One drifted path, redacted: sizes and short digests, never the value."""

    path: str
    classification: str
    kind: str
    desired_size: int | None
    live_size: int | None
    desired_digest: str | None
    live_digest: str | None

    def as_table_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "classification": self.classification,
            "kind": self.kind,
            "desired_size": "" if self.desired_size is None else self.desired_size,
            "live_size": "" if self.live_size is None else self.live_size,
            "desired_sha256": self.desired_digest or "",
            "live_sha256": self.live_digest or "",
        }


def short_digest(redactor: Redactor, path: str, data: bytes | None) -> str | None:
    """The first characters of a value's digest as people may see it (keyed for secrets)."""
    return None if data is None else redactor.digest(path, data)[:DIGEST_CHARS]


@dataclass(frozen=True)
class DriftSummary:
    tree: str
    run_id: int | None
    drift: int
    pending: int
    conflict: int
    rows: tuple[DriftRow, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.drift + self.pending + self.conflict

    @property
    def has_differences(self) -> bool:
        return self.total > 0


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
    tree: str
    path: str

    @property
    def url(self) -> str:
        from pathlib import Path

        return Path(self.path).resolve().as_uri()


@dataclass(frozen=True)
class TreeOutcome:
    """Everything the pipeline did for one tree, including where it stopped."""

    tree: str
    snapshot: SnapshotResult | None = None
    drift: DriftSummary | None = None
    reconcile: ReconcileSummary | None = None
    report: ReportSummary | None = None
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
