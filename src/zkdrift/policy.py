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
import re
import urllib.parse
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


# -- desired state from Git ---------------------------------------------------------------

# A branch or tag: git's own ref rules, less everything that could be read as an option
# or a revision expression.
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/+-]*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Transports that run commands or reach into this process: never from a tree's setting.
_REFUSED_SCHEMES = {"ext", "fd"}
# Schemes whose user name alone may be a token (https://TOKEN@host/...).
_TOKEN_USER_SCHEMES = {"http", "https", "ftp", "ftps"}
MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with any credential in it masked, the only form that is shown or recorded:
    ``https://user:***@host/repo.git``; a lone user name of an http(s) URL (often a
    token) becomes ``***``. Local paths and scp-like addresses carry none."""
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme = match.group(1).lower()
    rest = url[match.end() :]
    authority, sep, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    if colon:
        shown = f"{user}:{MASK}"
    elif scheme in _TOKEN_USER_SCHEMES:
        shown = MASK
    else:
        shown = user
    return f"{url[: match.end()]}{shown}@{host}{sep}{tail}"


def url_credentials(url: str) -> list[str]:
    """The credentials written in ``url`` (password, or an http(s) user name), for
    scrubbing text that may echo them (git's own messages)."""
    match = _SCHEME.match(url)
    if match is None:
        return []
    authority = url[match.end() :].partition("/")[0]
    userinfo, at, _host = authority.rpartition("@")
    if not at:
        return []
    user, colon, password = userinfo.partition(":")
    found = [password] if colon else []
    if not colon and match.group(1).lower() in _TOKEN_USER_SCHEMES:
        found.append(user)
    found += [urllib.parse.unquote(f) for f in found]
    return sorted({f for f in found if f}, key=len, reverse=True)


class DesiredSource(BaseModel):
    """Where a tree's desired state comes from: a path in a Git repository at a branch
    or tag, written ``REPOSITORY//PATH?ref=REF`` (see :meth:`parse`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The repository: a URL, an scp-like address or an absolute path.")
    path: str = Field(default="", description="Inside the repository; '' is its top.")
    ref: str = Field(description="A branch or tag (or refs/heads/..., refs/tags/...).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value or _CONTROL_CHARS.search(value) or value.startswith("-") or " " in value:
            raise ValueError("the repository must be a URL or an absolute path, without spaces")
        match = _SCHEME.match(value)
        if match is not None:
            if match.group(1).lower() in _REFUSED_SCHEMES:
                raise ValueError(f"the {match.group(1)}:: transport is not allowed")
            return value
        if "::" in value.split("/", 1)[0]:
            raise ValueError("remote helpers (transport::address) are not allowed")
        if value.startswith("/") or _SCP_LIKE.match(value):
            return value
        raise ValueError(
            f"repository {mask_url(value)!r}: give a URL (https://, ssh://, file://), "
            "user@host:path, or an absolute path"
        )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = [p for p in value.strip("/").split("/") if p]
        if _CONTROL_CHARS.search(value) or any(p in (".", "..") for p in parts):
            raise ValueError(
                f"path {value!r} in the repository must not hold '.', '..' or control characters"
            )
        return "/".join(parts)

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if (
            not _REF.fullmatch(value)
            or ".." in value
            or "//" in value
            or value.endswith(("/", ".", ".lock"))
        ):
            raise ValueError(f"ref {value!r} is not a branch or tag name")
        return value

    @classmethod
    def parse(cls, text: str) -> DesiredSource:
        """Read ``REPOSITORY[//PATH]?ref=REF``, e.g.
        ``https://git.example.com/ops/config.git//payments/prod?ref=main``,
        ``file:///srv/git/config.git//payments.yaml?ref=v1.4`` or
        ``/srv/git/config//payments?ref=main``. The first ``//`` after the scheme's
        own separates the repository from the path inside it. Raises
        :class:`InvalidInputError` in one line, credentials masked."""
        spec, qmark, query = text.strip().rpartition("?")
        shown = mask_url(spec if qmark else text)
        if not qmark:
            raise InvalidInputError(
                f"desired source {shown!r} names no branch or tag: end it with ?ref=NAME"
            )
        fields = urllib.parse.parse_qs(query, keep_blank_values=True)
        if set(fields) != {"ref"} or len(fields["ref"]) != 1:
            raise InvalidInputError(
                f"desired source {shown!r}: the only parameter is ?ref=BRANCH_OR_TAG"
            )
        match = _SCHEME.match(spec)
        start = match.end() if match else 0
        cut = spec.find("//", start)
        url, path = (spec, "") if cut < 0 else (spec[:cut], spec[cut + 2 :])
        try:
            return cls(url=url, path=path, ref=fields["ref"][0])
        except ValidationError as exc:
            raise InvalidInputError(f"desired source {shown!r}: {_explain(exc)}") from None

    def describe(self) -> str:
        """The source as written, credentials masked: what people and records see."""
        where = f"//{self.path}" if self.path else ""
        return f"{mask_url(self.url)}{where}?ref={self.ref}"


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
    reconcile_on_drift: bool = Field(
        default=False,
        description="Run the tree's reconcile deployment when its watcher sees it drift"
        " (a dry run unless 'reconcile' is apply).",
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
    desired_source: DesiredSource | None = Field(
        default=None,
        description="Take the desired state from this Git repository ('zkdrift desired sync');"
        " hand-made desired changes then need --override.",
    )

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

    def shown(self) -> dict[str, Any]:
        """The policy as people and JSON output see it (defaults left out): the desired
        source as written, its credentials masked."""
        out = self.model_dump(mode="json", exclude_defaults=True)
        if self.desired_source is not None:
            out["desired_source"] = self.desired_source.describe()
        return out

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
