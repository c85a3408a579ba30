"""A tree's policy: schedule, reconcile mode and guards, typed and validated once.

The policy is stored as JSON with the tree (``trees.options``) and read back
only through :meth:`TreePolicy.from_options`, which names the tree and the
field when something is wrong. Everything that acts on a tree (the CLI,
``serve``, ``status``, the tasks, reconcile) reads these fields; nothing
reads the raw JSON.

Cron lines are checked with croniter, the parser Prefect schedules with,
under Prefect's extra rule that random (``R``) and hashed (``H``)
expressions are not allowed.
"""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any, Self

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from zkdrift.errors import InvalidInputError
from zkdrift.model import Acl

# The largest op that fits in one request under ZooKeeper's default
# jute.maxbuffer (1 MiB, 0xfffff bytes), with room for the request header
# and the lock check that fences every transaction. A larger request makes
# the server drop the connection.
MAX_OP_BYTES = 1024 * 1024 - 4096
DEFAULT_MAX_DELETE_FRACTION = 0.1
# Shorter pipeline intervals would overlap their own runs on any real tree.
MIN_INTERVAL_SECONDS = 30


class InvalidPolicyError(InvalidInputError):
    """A tree's stored or requested policy breaks a rule; the message names both."""


class ReconcileMode(enum.StrEnum):
    """What a scheduled pipeline does with drift."""

    PLAN = "plan"  # a dry run: plan and report, never write
    APPLY = "apply"  # apply the desired state under the tree's lock


def check_cron(line: str) -> str:
    """``line`` when it is a cron expression Prefect can schedule, else ValueError."""
    fields = line.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron {line!r} must have 5 fields (minute hour day-of-month month day-of-week)"
        )
    if any(field.casefold() in ("r", "h") for field in fields):
        raise ValueError(f"cron {line!r}: random (R) and hashed (H) fields are not supported")
    if not croniter.is_valid(line):
        raise ValueError(f"cron {line!r} is not a valid cron expression")
    return line


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone {name!r} is unknown: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return name


class Schedule(BaseModel):
    """When the tree's pipeline runs: a cron line (in a timezone) or an interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: str | None = None
    interval: int | None = Field(default=None, ge=MIN_INTERVAL_SECONDS)
    timezone: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("a schedule is either a cron line or an interval in seconds")
        return self

    def describe(self) -> str:
        what = f"cron {self.cron!r}" if self.cron is not None else f"every {self.interval}s"
        return f"{what} ({self.timezone})" if self.timezone else what


class TlsSettings(BaseModel):
    """How to reach a tree's servers over TLS: files named here, key password from the
    environment. Verification of the server's certificate (chain and host name) is on
    unless turned off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: str | None = Field(default=None, description="CA bundle (PEM) that signs the servers.")
    cert: str | None = Field(default=None, description="Client certificate (PEM).")
    key: str | None = Field(default=None, description="Client private key (PEM).")
    key_password_env: str | None = Field(
        default=None, description="Environment variable holding the key's password."
    )
    verify: bool = Field(default=True, description="Verify the server certificate and name.")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate and its key go together: give both or neither")
        return self


def parse_acl_list(entries: Sequence[str]) -> tuple[Acl, ...]:
    """ACL entries as written (``scheme:id:perms``), parsed; ValueError names a bad one."""
    if not entries:
        raise ValueError("an ACL needs at least one entry (scheme:id:perms)")
    return tuple(sorted(Acl.parse(e) for e in entries))


class TreePolicy(BaseModel):
    """Everything a tree's owner decides about how zkdrift treats it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: Schedule | None = Field(
        default=None, description="When the pipeline runs; None: on demand only."
    )
    reconcile: ReconcileMode = Field(
        default=ReconcileMode.PLAN, description="What a scheduled pipeline does with drift."
    )
    protected: tuple[str, ...] = Field(
        default=(), description="Path globs an apply must never touch (with their subtrees)."
    )
    max_delete_fraction: float = Field(
        default=DEFAULT_MAX_DELETE_FRACTION,
        ge=0.0,
        le=1.0,
        description="Refuse plans deleting more than this share of live nodes without --force.",
    )
    max_op_bytes: int = Field(
        default=MAX_OP_BYTES,
        gt=0,
        description="Largest single write; raise it for servers with a larger jute.maxbuffer.",
    )
    default_acl: tuple[str, ...] | None = Field(
        default=None,
        description="ACL of the nodes zkdrift creates (scheme:id:perms entries);"
        " None: each inherits its nearest existing parent's ACL.",
    )
    allow_world_readable_secrets: bool = Field(
        default=False,
        description="Let zkdrift create secret paths that anyone may read (world:anyone:r).",
    )
    tls: TlsSettings | None = Field(default=None, description="Connect over TLS.")

    @field_validator("default_acl")
    @classmethod
    def _acl(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(a.render() for a in parse_acl_list(value))

    @property
    def default_acls(self) -> tuple[Acl, ...] | None:
        """The default ACL as entries, or None to inherit from the nearest parent."""
        return None if self.default_acl is None else parse_acl_list(self.default_acl)

    @property
    def applies(self) -> bool:
        """True when scheduled runs apply the desired state (not only plan it)."""
        return self.reconcile is ReconcileMode.APPLY

    @classmethod
    def from_options(cls, tree: str, options: Mapping[str, Any] | None) -> TreePolicy:
        """The policy stored for ``tree``; :class:`InvalidPolicyError` names what is wrong."""
        try:
            return cls.model_validate(dict(options or {}))
        except ValidationError as exc:
            raise InvalidPolicyError(
                f"tree {tree!r} has an invalid policy: {_explain(exc)}"
            ) from None

    def to_options(self) -> dict[str, Any]:
        """The JSON form stored with the tree (defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def changed(self, tree: str, **changes: Any) -> TreePolicy:
        """A copy with ``changes`` applied and validated as a whole
        (``schedule=None`` removes the schedule)."""
        merged = {**self.model_dump(mode="json"), **changes}
        try:
            return TreePolicy.model_validate(merged)
        except ValidationError as exc:
            raise InvalidPolicyError(f"tree {tree!r}: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field: problem; field: problem``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "policy"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
