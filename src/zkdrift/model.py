"""The vocabulary of zkdrift as frozen dataclasses.

Everything here is plain data: no I/O, no database, no ZooKeeper. The reader
produces these, the diff and plan functions consume them, the store persists
them.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


def digest(data: bytes) -> str:
    """Content digest used everywhere a value is referred to without its bytes
    (SHA-256, hex; the database stores its bytes, :func:`value_key`)."""
    return hashlib.sha256(data).hexdigest()


# Bytes kept of a path's SHA-1. A path digest only has to tell apart the paths of
# one tree (every lookup and index starts with the tree): for n paths the chance
# that any two share 12 bytes is about n^2 / 2^97, some 6e-18 for a million
# paths (and 3e-14 even for 400 million), against about 10 bytes saved per node
# row and per entry of each index that holds it. A prefix of a digest sorts as
# the digest does, so streams ordered by path digest merge the same way.
PATH_KEY_BYTES = 12


def path_digest(path: str) -> str:
    """Digest of a znode path; paths can be longer than an index allows (the first
    :data:`PATH_KEY_BYTES` bytes of its SHA-1, hex; the database stores its bytes,
    :func:`path_key`)."""
    return path_key(path).hex()


def value_key(data: bytes) -> bytes:
    """:func:`digest` as bytes: ``value_key(d).hex() == digest(d)``."""
    return hashlib.sha256(data).digest()


def path_key(path: str) -> bytes:
    """:func:`path_digest` as bytes: ``path_key(p).hex() == path_digest(p)``."""
    return hashlib.sha1(path.encode("utf-8"), usedforsecurity=False).digest()[:PATH_KEY_BYTES]


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A name as it may appear in a file name, URL or Prefect key: lowercase letters,
    digits and dashes.

    Names that change when cleaned get a short digest of the original, so
    ``App`` and ``app`` (or ``a_b`` and ``a.b``) never share a slug.
    """
    cleaned = _UNSAFE.sub("-", name.lower()).strip("-")
    if cleaned != name:
        suffix = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:6]
        cleaned = f"{cleaned}-{suffix}" if cleaned else suffix
    return cleaned


@dataclass(frozen=True, slots=True)
class Stat:
    """The parts of a ZooKeeper stat that zkdrift records."""

    version: int = 0
    cversion: int = 0
    aversion: int = 0
    czxid: int = 0
    mzxid: int = 0
    pzxid: int = 0
    ctime: int = 0
    mtime: int = 0
    ephemeral_owner: int = 0
    num_children: int = 0
    data_length: int = 0


READ = 1  # ZooKeeper's permission bit for reading a node's data and children


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One ACL entry: permission bits, scheme and id (e.g. ``31 world anyone``)."""

    perms: int
    scheme: str
    id: str

    def render(self) -> str:
        return f"{self.scheme}:{self.id}:{perms_to_text(self.perms)}"

    @classmethod
    def parse(cls, text: str) -> Acl:
        """``scheme:id:perms``, as ZooKeeper's CLI writes it: ``world:anyone:r``,
        ``digest:bob:<hash>:cdrwa``, ``x509:CN=app,O=acme:rwcda``, ``ip:10.0.0.0/8:r``.
        The id may hold colons; the scheme is before the first, the perms after the last."""
        scheme, sep, rest = text.strip().partition(":")
        ident, sep2, perms = rest.rpartition(":")
        if not sep or not sep2 or not scheme or not ident or not perms:
            raise ValueError(f"ACL {text!r} must look like scheme:id:perms, e.g. world:anyone:r")
        return cls(perms_from_text(perms), scheme, ident)

    @property
    def world_readable(self) -> bool:
        """True for ``world:anyone`` with read permission: anybody may read the value."""
        return self.scheme == "world" and self.id == "anyone" and bool(self.perms & READ)


_PERM_LETTERS = (("r", 1), ("w", 2), ("c", 4), ("d", 8), ("a", 16))


def perms_to_text(perms: int) -> str:
    return "".join(letter for letter, bit in _PERM_LETTERS if perms & bit)


def perms_from_text(text: str) -> int:
    if not text:
        raise ValueError("ACL permissions are empty (use letters from rwcda)")
    bits = dict(_PERM_LETTERS)
    value = 0
    for ch in text.lower():
        if ch not in bits:
            raise ValueError(f"unknown ACL permission {ch!r} in {text!r} (use r, w, c, d, a)")
        value |= bits[ch]
    return value


# One node as a live read yields it: (path, data, stat, acl). The stat is in
# ZooKeeper's wire order: (czxid, mzxid, ctime, mtime, version, cversion,
# aversion, ephemeralOwner, dataLength, numChildren, pzxid); the ACL is None
# when it was not read. Plain tuples: a million of them stream through a capture.
WireStat = tuple[int, int, int, int, int, int, int, int, int, int, int]
LiveNode = tuple[str, bytes, WireStat, tuple[Acl, ...] | None]


def wire_order(stat: Stat) -> WireStat:
    """A :class:`Stat` in ZooKeeper's wire order (see :data:`LiveNode`)."""
    return (
        stat.czxid,
        stat.mzxid,
        stat.ctime,
        stat.mtime,
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children,
        stat.pzxid,
    )


@dataclass(frozen=True, slots=True)
class Znode:
    """One znode: its path, its data (bytes, never decoded) and optionally stat and ACL.

    Desired-state nodes carry no stat; live nodes always do.
    """

    path: str
    data: bytes = b""
    stat: Stat | None = None
    acl: tuple[Acl, ...] | None = None

    @property
    def ephemeral(self) -> bool:
        return self.stat is not None and self.stat.ephemeral_owner != 0

    @property
    def version(self) -> int | None:
        return None if self.stat is None else self.stat.version

    @property
    def data_digest(self) -> str:
        return digest(self.data)


@dataclass(frozen=True)
class TreeState(Mapping[str, Znode]):
    """A whole tree at one moment, keyed by absolute znode path."""

    root: str
    nodes: Mapping[str, Znode] = field(default_factory=dict)
    # The server's last zxid when a live read started and when it ended (0: not read live).
    zxid_start: int = 0
    zxid_end: int = 0

    def __getitem__(self, path: str) -> Znode:
        return self.nodes[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def total_bytes(self) -> int:
        return sum(len(n.data) for n in self.nodes.values())

    @property
    def fuzzy(self) -> bool:
        """True when a node changed while the tree was read live: its data, children
        or existence changed after the read's first zxid."""
        start = self.zxid_start
        return bool(start) and any(
            n.stat is not None and max(n.stat.mzxid, n.stat.pzxid, n.stat.czxid) > start
            for n in self.nodes.values()
        )

    @classmethod
    def of(cls, root: str, nodes: Mapping[str, bytes] | list[Znode]) -> TreeState:
        """Convenience constructor: ``TreeState.of("/app", {"/app/a": b"1"})``."""
        if isinstance(nodes, Mapping):
            return cls(root, {p: Znode(p, d) for p, d in nodes.items()})
        return cls(root, {n.path: n for n in nodes})


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    DATA_CHANGED = "data_changed"
    ACL_CHANGED = "acl_changed"


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two tree states, from ``before`` to ``after``."""

    kind: ChangeKind
    path: str
    before: Znode | None
    after: Znode | None


class DriftClass(enum.StrEnum):
    DRIFT = "drift"  # live changed outside zkdrift
    PENDING = "pending"  # desired changed, not yet applied
    CONFLICT = "conflict"  # both changed


class OpKind(enum.StrEnum):
    CREATE = "create"
    SET = "set"
    DELETE = "delete"
    SET_ACL = "set_acl"


class OpStatus(enum.StrEnum):
    """What became of one op of an apply (or one change of an adopt), as audited."""

    APPLIED = "applied"
    ADOPTED = "adopted"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    NOT_SENT = "not-sent"
    UNKNOWN = "unknown"  # sent, but the connection dropped before the answer
    NOT_APPLIED = "not-applied"  # was unknown; read back later, its transaction had not committed


@dataclass(frozen=True, slots=True)
class Op:
    """One write in a plan.

    ``expected_version`` is the znode version the op was planned against: the
    data version for ``set``/``delete``, the ACL version for ``set_acl``, and
    ``None`` for ``create`` (which must fail when the node exists).
    """

    kind: OpKind
    path: str
    data: bytes | None = None
    expected_version: int | None = None
    acl: tuple[Acl, ...] | None = None
    before_digest: str | None = None
    after_digest: str | None = None


@dataclass(frozen=True)
class Plan:
    """Ordered operations that make live equal desired."""

    tree: str
    ops: tuple[Op, ...]
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.ops
