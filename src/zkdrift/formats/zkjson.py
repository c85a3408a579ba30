"""The zkdrift JSON export format, version 1.

An export is one UTF-8 JSON object describing one tree state::

    {
      "format": "zkdrift-export",
      "version": 1,
      "tree": "payments",
      "root": "/payments",
      "snapshot": {"id": 42, "taken_at": "2024-05-01T12:00:00+00:00"},
      "nodes": [
        {"path": "/payments", "data": "", "size": 0, "sha256": "e3b0...", "ephemeral": false,
         "stat": {...}, "acl": [{"perms": "rwcda", "scheme": "world", "id": "anyone"}]},
        ...
      ]
    }

Top-level fields:

``format``
    Always the string ``"zkdrift-export"``; readers use it to recognise the file.
``version``
    Always ``1`` for this layout. Readers reject versions they do not know.
``tree``
    Name of the registered tree the state belongs to (a string).
``root``
    Absolute ZooKeeper path of the tree's root. Every node path is ``root`` or
    below it.
``snapshot``
    ``{"id": int | null, "taken_at": ISO 8601 string | null}``: the snapshot
    the state came from, or nulls for a state that is not a stored snapshot
    (a desired state, for instance).
``nodes``
    One object per znode, sorted by path (code-point order), no path twice.

Node fields:

``path``
    Absolute znode path, any valid ZooKeeper path: unicode and spaces are
    written as-is (the file is UTF-8, not ASCII-escaped).
``data``
    The znode's bytes, standard base64 with padding (RFC 4648 section 4).
    Empty data is ``""``. Bytes are never decoded, so binary and non-UTF-8
    values round-trip exactly.
``size``
    Length of the data in bytes.
``sha256``
    Lower-case hex SHA-256 of the data. Readers check ``size`` and ``sha256``
    against the decoded bytes and reject the file, naming the path, on any
    mismatch.
``ephemeral``
    ``true`` when the node is ephemeral (``stat.ephemeral_owner != 0``).
    Must agree with ``stat``; ``true`` requires a stat.
``stat``
    ``null``, or an object with the integer fields ``version``, ``cversion``,
    ``aversion``, ``czxid``, ``mzxid``, ``pzxid``, ``ctime``, ``mtime``
    (milliseconds since the epoch), ``ephemeral_owner``, ``num_children`` and
    ``data_length``. Desired states carry no stat.
``acl``
    ``null`` when ACLs were not captured, else a list (possibly empty) of
    ``{"perms": "rwcda", "scheme": "world", "id": "anyone"}`` where ``perms``
    is any subset of the letters ``r w c d a`` (read, write, create, delete,
    admin).

Readers ignore keys they do not know, so later minor additions stay readable
by version-1 readers. Writers put one node per line, which keeps exports
diff-friendly and makes reader error line numbers point at the node. An export
laid out exactly as :func:`dump_export` writes it can be read a node at a time
(:func:`stream_export`); any other valid layout is read whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from zkdrift.model import Acl, Stat, TreeState, Znode, digest, perms_from_text, perms_to_text
from zkdrift.paths import InvalidPathError, is_under, validate_path

from ._common import b64decode_strict, b64encode
from ._json import JsonDocument, parse_json
from .errors import FormatError

FORMAT_NAME = "zkdrift-export"
FORMAT_VERSION = 1

STAT_FIELDS: tuple[str, ...] = (
    "version",
    "cversion",
    "aversion",
    "czxid",
    "mzxid",
    "pzxid",
    "ctime",
    "mtime",
    "ephemeral_owner",
    "num_children",
    "data_length",
)


@dataclass(frozen=True)
class ExportDocument:
    """Everything an export file holds: the state and where it came from."""

    tree: str
    state: TreeState
    snapshot_id: int | None
    taken_at: datetime | None


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _node_object(node: Znode) -> dict[str, object]:
    stat = None
    if node.stat is not None:
        stat = {name: getattr(node.stat, name) for name in STAT_FIELDS}
    acl = None
    if node.acl is not None:
        acl = [{"perms": perms_to_text(a.perms), "scheme": a.scheme, "id": a.id} for a in node.acl]
    return {
        "path": node.path,
        "data": b64encode(node.data),
        "size": len(node.data),
        "sha256": digest(node.data),
        "ephemeral": node.ephemeral,
        "stat": stat,
        "acl": acl,
    }


def dump_export(
    state: TreeState,
    *,
    tree: str,
    snapshot_id: int | None = None,
    taken_at: datetime | None = None,
) -> bytes:
    """Serialise ``state`` as a zkdrift export (UTF-8 bytes, one node per line)."""
    validate_path(state.root)
    for path in state:
        if not is_under(path, state.root):
            raise ValueError(f"node {path!r} is outside the state's root {state.root!r}")
    nodes = (state[path] for path in sorted(state))
    return b"".join(
        iter_export(nodes, root=state.root, tree=tree, snapshot_id=snapshot_id, taken_at=taken_at)
    )


def iter_export(
    nodes: Iterable[Znode],
    *,
    root: str,
    tree: str,
    snapshot_id: int | None = None,
    taken_at: datetime | None = None,
) -> Iterator[bytes]:
    """:func:`dump_export` a piece at a time, for states too large to hold.

    ``nodes`` must come sorted by path (code-point order), each at or below
    ``root``; a node out of order, repeated or outside the root raises
    ``ValueError`` where it is met. The pieces joined are exactly what
    :func:`dump_export` returns for the same nodes.
    """
    validate_path(root)
    snapshot = {
        "id": snapshot_id,
        "taken_at": None if taken_at is None else taken_at.isoformat(),
    }
    head = [
        "{",
        f'  "format": {_dumps(FORMAT_NAME)},',
        f'  "version": {FORMAT_VERSION},',
        f'  "tree": {_dumps(tree)},',
        f'  "root": {_dumps(root)},',
        f'  "snapshot": {_dumps(snapshot)},',
    ]
    previous: str | None = None
    pending: list[str] = []
    for node in nodes:
        path = node.path
        if not is_under(path, root):
            raise ValueError(f"node {path!r} is outside the state's root {root!r}")
        if previous is not None and not previous < path:
            raise ValueError(f"nodes out of path order: {path!r} came after {previous!r}")
        if previous is None:
            head.append('  "nodes": [')
            yield ("\n".join(head) + "\n").encode("utf-8")
        previous = path
        line = "    " + _dumps(_node_object(node))
        # The last node has no comma after it: each line waits for the next.
        if pending:
            pending.append(",\n")
            if len(pending) >= 2000:
                yield "".join(pending).encode("utf-8")
                pending.clear()
        pending.append(line)
    if previous is None:
        head.append('  "nodes": []')
        yield ("\n".join(head) + "\n}\n").encode("utf-8")
        return
    pending.append("\n  ]\n}\n")
    yield "".join(pending).encode("utf-8")


def write_export(
    state: TreeState,
    destination: Path | BinaryIO,
    *,
    tree: str,
    snapshot_id: int | None = None,
    taken_at: datetime | None = None,
) -> None:
    """Write an export to a file path (atomically, via rename) or a binary stream.

    Pass ``sys.stdout.buffer`` to write to standard output.
    """
    payload = dump_export(state, tree=tree, snapshot_id=snapshot_id, taken_at=taken_at)
    if not isinstance(destination, Path):
        destination.write(payload)
        destination.flush()
        return
    directory = destination.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        os.replace(tmp_name, destination)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _int_field(doc: JsonDocument, value: object, name: str, *loc: str | int, entry: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise doc.error(f"{name} must be an integer, got {type(value).__name__}", *loc, entry=entry)
    return value


def _parse_stat(doc: JsonDocument, raw: object, i: int, path: str) -> Stat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise doc.error("stat must be an object or null", "nodes", i, "stat", entry=path)
    values: dict[str, int] = {}
    for name in STAT_FIELDS:
        if name not in raw:
            raise doc.error(f"stat is missing {name!r}", "nodes", i, "stat", entry=path)
        values[name] = _int_field(
            doc, raw[name], f"stat.{name}", "nodes", i, "stat", name, entry=path
        )
    return Stat(**values)


def _parse_acl(doc: JsonDocument, raw: object, i: int, path: str) -> tuple[Acl, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise doc.error("acl must be a list or null", "nodes", i, "acl", entry=path)
    acls: list[Acl] = []
    for j, item in enumerate(raw):
        loc = ("nodes", i, "acl", j)
        if not isinstance(item, dict):
            raise doc.error(f"acl[{j}] must be an object", *loc, entry=path)
        perms, scheme, ident = item.get("perms"), item.get("scheme"), item.get("id")
        if not (isinstance(perms, str) and isinstance(scheme, str) and isinstance(ident, str)):
            raise doc.error(f"acl[{j}] needs string fields perms, scheme and id", *loc, entry=path)
        try:
            bits = perms_from_text(perms)
        except ValueError:
            # The model's message quotes the field; an ACL id may be a credential
            # digest, so messages here name the field, not what it holds.
            raise doc.error(
                f"acl[{j}]: perms must be letters from r, w, c, d, a", *loc, entry=path
            ) from None
        acls.append(Acl(bits, scheme, ident))
    return tuple(acls)


def _parse_node(doc: JsonDocument, raw: object, i: int, root: str) -> Znode:
    if not isinstance(raw, dict):
        raise doc.error(f"nodes[{i}] must be an object", "nodes", i, entry=f"nodes[{i}]")
    path = raw.get("path")
    if not isinstance(path, str):
        raise doc.error("node has no string 'path'", "nodes", i, entry=f"nodes[{i}]")
    try:
        validate_path(path)
    except InvalidPathError as exc:
        raise doc.error(f"invalid ZooKeeper path: {exc}", "nodes", i, "path", entry=path) from None
    if not is_under(path, root):
        raise doc.error(f"path is outside root {root!r}", "nodes", i, "path", entry=path)
    try:
        data = b64decode_strict(raw.get("data"))
    except ValueError as exc:
        raise doc.error(f"data: {exc}", "nodes", i, "data", entry=path) from None
    size = _int_field(doc, raw.get("size"), "size", "nodes", i, "size", entry=path)
    if size != len(data):
        raise doc.error(
            f"size mismatch: file says {size} bytes, data decodes to {len(data)}",
            "nodes",
            i,
            "size",
            entry=path,
        )
    sha = raw.get("sha256")
    actual = digest(data)
    if not isinstance(sha, str) or sha.lower() != actual:
        raise doc.error(
            f"sha256 mismatch: the data hashes to {actual}, not to the file's sha256",
            "nodes",
            i,
            "sha256",
            entry=path,
        )
    stat = _parse_stat(doc, raw.get("stat"), i, path)
    ephemeral = raw.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise doc.error("ephemeral must be true or false", "nodes", i, "ephemeral", entry=path)
    implied = stat is not None and stat.ephemeral_owner != 0
    if ephemeral != implied:
        raise doc.error(
            f"ephemeral is {str(ephemeral).lower()} but the stat says "
            f"{'ephemeral' if implied else 'not ephemeral' if stat else 'nothing (null)'}",
            "nodes",
            i,
            "ephemeral",
            entry=path,
        )
    return Znode(path, data, stat, _parse_acl(doc, raw.get("acl"), i, path))


def export_from_document(doc: JsonDocument) -> ExportDocument:
    """Validate a parsed export and build the state it describes."""
    top: Any = doc.value
    if not isinstance(top, dict) or top.get("format") != FORMAT_NAME:
        raise doc.error(f'not a zkdrift export (expected "format": {FORMAT_NAME!r})', "format")
    version = top.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        shown = f" {version}" if type(version) is int else ""
        raise doc.error(
            f"unsupported export version{shown} (this reader knows {FORMAT_VERSION})",
            "version",
        )
    tree = top.get("tree")
    if not isinstance(tree, str):
        raise doc.error("'tree' must be a string", "tree")
    root = top.get("root")
    if not isinstance(root, str):
        raise doc.error("'root' must be a string", "root")
    try:
        validate_path(root)
    except InvalidPathError as exc:
        raise doc.error(f"invalid root: {exc}", "root", entry=root) from None
    snapshot = top.get("snapshot")
    if snapshot is None:
        snapshot = {}
    if not isinstance(snapshot, dict):
        raise doc.error("'snapshot' must be an object", "snapshot")
    snapshot_id = snapshot.get("id")
    if snapshot_id is not None and (
        isinstance(snapshot_id, bool) or not isinstance(snapshot_id, int)
    ):
        raise doc.error(
            f"snapshot id must be an integer or null, got {type(snapshot_id).__name__}",
            "snapshot",
        )
    raw_taken = snapshot.get("taken_at")
    taken_at = None
    if raw_taken is not None:
        try:
            taken_at = datetime.fromisoformat(raw_taken)
        except (TypeError, ValueError):
            raise doc.error("taken_at must be an ISO 8601 timestamp or null", "snapshot") from None
    raw_nodes = top.get("nodes")
    if not isinstance(raw_nodes, list):
        raise doc.error("'nodes' must be a list", "nodes")
    nodes: dict[str, Znode] = {}
    for i, raw in enumerate(raw_nodes):
        node = _parse_node(doc, raw, i, root)
        if node.path in nodes:
            raise doc.error("path appears more than once", "nodes", i, "path", entry=node.path)
        nodes[node.path] = node
    state = TreeState(root, {p: nodes[p] for p in sorted(nodes)})
    return ExportDocument(tree=tree, state=state, snapshot_id=snapshot_id, taken_at=taken_at)


def parse_export(data: bytes, *, source: str = "<export>") -> ExportDocument:
    """Read an export with its metadata (tree, snapshot id, time taken)."""
    return export_from_document(parse_json(data, source))


class NotStreamableError(Exception):
    """An export not laid out exactly as zkdrift writes it, or with something wrong in
    it: read it whole with :func:`parse_export`, which accepts any layout and names
    the problem (file, line, entry) exactly."""


_HEAD_LINES = 6  # "{", then format, version, tree, root and snapshot, one per line
_LAST = b"  ]\n"


def stream_export(
    lines: Iterable[bytes], *, source: str = "<export>"
) -> tuple[ExportDocument, Iterator[Znode]]:
    """Read an export as zkdrift writes it (:func:`dump_export`: one node per line,
    sorted by path), a node at a time, for exports too large to hold.

    Returns the export's metadata (its ``state`` empty) and an iterator of its
    nodes, each validated as :func:`parse_export` validates it. Raises
    :class:`NotStreamableError`, at once or while iterating, when the layout differs
    from what :func:`dump_export` writes, when a node is not strictly after the
    one before it in path order, or when anything is wrong: the caller then
    reads the file whole, which accepts every valid layout and reports errors
    as it always has.
    """
    it = iter(lines)
    head: list[bytes] = []
    for line in it:
        head.append(line)
        if len(head) > _HEAD_LINES:
            break
    if (
        len(head) <= _HEAD_LINES
        or head[0] != b"{\n"
        or head[1] != b'  "format": "zkdrift-export",\n'
    ):
        raise NotStreamableError("not the layout zkdrift writes")
    opening = head[-1]
    if opening not in (b'  "nodes": [\n', b'  "nodes": []\n'):
        raise NotStreamableError("not the layout zkdrift writes")
    try:
        header = parse_export(b"".join(head[:-1]) + b'  "nodes": []\n}\n', source=source)
    except FormatError:
        raise NotStreamableError("a header the whole reader must report on") from None
    if opening == b'  "nodes": []\n':
        return header, _stream_end(it, [b"}\n"])
    return header, _stream_nodes(it, header.state.root, source)


def _stream_end(it: Iterator[bytes], expected: list[bytes]) -> Iterator[Znode]:
    rest = [line for _, line in zip(range(len(expected) + 1), it, strict=False)]
    if rest != expected:
        raise NotStreamableError("not the layout zkdrift writes")
    return
    yield  # a generator: the check runs when the nodes are read


def _stream_nodes(
    it: Iterator[bytes], root: str, source: str, batch: int = 1000
) -> Iterator[Znode]:
    previous: str | None = None
    texts: list[bytes] = []
    last = False
    for line in it:
        if last:
            if line != _LAST:
                raise NotStreamableError("not the layout zkdrift writes")
            break
        if not line.startswith(b"    {"):
            raise NotStreamableError("not the layout zkdrift writes")
        if line.endswith(b"},\n"):
            texts.append(line[4:-2])
        elif line.endswith(b"}\n"):
            texts.append(line[4:-1])
            last = True
        else:
            raise NotStreamableError("not the layout zkdrift writes")
        if len(texts) >= batch:
            previous = yield from _parse_batch(texts, root, source, previous)
            texts.clear()
    else:
        raise NotStreamableError("the export ends early")
    previous = yield from _parse_batch(texts, root, source, previous)
    yield from _stream_end(it, [b"}\n"])


def _parse_batch(
    texts: list[bytes], root: str, source: str, previous: str | None
) -> Generator[Znode, None, str | None]:
    """Parse node lines as one JSON array (one decoder for the lot), validating each
    node as :func:`parse_export` does; returns the last path."""
    try:
        doc = parse_json(b"[" + b",".join(texts) + b"]", source)
        nodes = [_parse_node(doc, raw, i, root) for i, raw in enumerate(doc.value)]
    except FormatError:
        raise NotStreamableError("a node the whole reader must report on") from None
    if len(nodes) != len(texts):
        raise NotStreamableError("not one node per line")
    for node in nodes:
        if previous is not None and not previous < node.path:
            raise NotStreamableError("nodes out of path order, or repeated")
        previous = node.path
        yield node
    return previous


def load_export(data: bytes, *, source: str = "<export>") -> TreeState:
    """Read an export back into the exact TreeState that was dumped.

    Raises FormatError (naming ``source``, the line and the node path) on
    malformed JSON, invalid paths, bad base64, or size/sha256 mismatches.
    """
    return parse_export(data, source=source).state
