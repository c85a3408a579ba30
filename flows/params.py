"""Flow parameters as Pydantic models: the Prefect UI renders them as forms."""

from __future__ import annotations

import datetime as dt
import enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

TREES_DESCRIPTION = (
    "Names of registered trees to work on (see 'zkdrift tree list'). "
    "Empty means every registered tree."
)
APPLY_DESCRIPTION = (
    "apply: write the desired state to ZooKeeper; dry-run: plan only, nothing is written; "
    "policy: as each tree's policy says (zkdrift tree set NAME --reconcile apply applies)."
)


class ApplyChoice(enum.StrEnum):
    """Whether a run writes to ZooKeeper."""

    POLICY = "policy"
    APPLY = "apply"
    DRY_RUN = "dry-run"

    @classmethod
    def of(cls, value: object) -> ApplyChoice:
        """``True``/``False``/``None`` (the command line's --apply/--dry-run) as a choice."""
        if value is None:
            return cls.POLICY
        if isinstance(value, bool):
            return cls.APPLY if value else cls.DRY_RUN
        return cls(str(value))

    def decide(self, by_policy: bool) -> bool:
        return by_policy if self is ApplyChoice.POLICY else self is ApplyChoice.APPLY


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trees: list[str] = Field(default_factory=list, description=TREES_DESCRIPTION)


class SnapshotParams(_Params):
    """Capture live ZooKeeper trees into the store."""


class DriftParams(_Params):
    """Compare each tree's desired state with live ZooKeeper and record the drift."""


class ReconcileParams(_Params):
    """Make live ZooKeeper equal the desired state: a dry run unless told to apply."""

    @field_validator("apply", mode="before", check_fields=False)
    @classmethod
    def _apply_choice(cls, value: object) -> ApplyChoice:
        return ApplyChoice.of(value)

    apply: ApplyChoice = Field(default=ApplyChoice.POLICY, description=APPLY_DESCRIPTION)
    prune: bool = Field(
        default=False,
        description="Also delete live nodes the desired state lacks (never ephemeral nodes).",
    )
    reason: str = Field(
        default="reconcile from Prefect",
        min_length=1,
        description="Why this reconcile runs; recorded in the audit trail of every apply.",
    )


class ReportParams(_Params):
    """Render the HTML drift and history report of each tree."""

    since: dt.datetime | None = Field(
        default=None, description="Report history from this time on (default: all of it)."
    )


class PipelineParams(ReconcileParams):
    """Snapshot, drift, reconcile per policy, and report, for each tree concurrently."""

    report: bool = Field(default=True, description="Render the HTML report of each tree.")
    since: dt.datetime | None = Field(
        default=None, description="Report history from this time on (default: all of it)."
    )
    reason: str = Field(
        default="scheduled pipeline",
        min_length=1,
        description="Why this run applies changes; recorded in the audit trail of every apply.",
    )
