"""zk-shell's JSON backup format (what ``cp /app json://!tmp!app.json/app true true`` writes).

zk-shell 1.3.x (``zk_shell/copy_util.py``, ``JSONProxy``) stores a flat JSON
object keyed by absolute znode path::

    {
        "/app": {"content": "", "acls": []},
        "/app/db": {
            "content": "aG9zdD1kYg==",
            "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]
        }
    }

- ``content`` is the znode's bytes in standard base64, or ``null`` for a
  node without data (read here as empty bytes). zk-shell never writes plain
  text here, so content that is not valid base64 is rejected rather than
  guessed at.
- ``acls`` is a list of kazoo ACLs as ``ACLReader.to_dict`` writes them:
  ``perms`` is the integer bit mask (read 1, write 2, create 4, delete 8,
  admin 16) and ``id`` holds ``scheme`` and ``id``. Missing fields take
  zk-shell's defaults (all permissions, ``world:anyone``). An empty list is
  what zk-shell writes when it has no ACL to copy, and is read as "ACL not
  specified" (``acl=None``).
- zk-shell does not write an ``ephemeral`` key (it skips ephemeral nodes
  when copying). If an entry carries ``"ephemeral": true`` the node is left
  out of the desired state, since zkdrift never manages ephemeral nodes.

The keys are the destination paths of the copy, so copy to the same path
you manage (``json://...json/app`` for root ``/app``).
"""

from __future__ import annotations

import json

from zkdrift.model import Acl, TreeState

from ._common import StateBuilder, b64decode_strict, b64encode
from ._json import JsonDocument, parse_json
from .errors import FormatError

_ALL_PERMS = 31


def _acls(doc: JsonDocument, raw: object, path: str) -> tuple[Acl, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise doc.error("'acls' must be a list", path, "acls", entry=path)
    acls: list[Acl] = []
    for j, item in enumerate(raw):
        if not isinstance(item, dict):
            raise doc.error(f"acls[{j}] must be an object", path, "acls", j, entry=path)
        perms = item.get("perms", _ALL_PERMS)
        ident = item.get("id", {})
        if not isinstance(ident, dict):
            raise doc.error(f"acls[{j}].id must be an object", path, "acls", j, entry=path)
        scheme = ident.get("scheme", "world")
        id_value = ident.get("id", "anyone")
        if (
            isinstance(perms, bool)
            or not isinstance(perms, int)
            or not 0 <= perms <= _ALL_PERMS
            or not isinstance(scheme, str)
            or not isinstance(id_value, str)
        ):
            raise doc.error(
                f"acls[{j}] is not a valid ACL (perms 0-31, string scheme and id)",
                path,
                "acls",
                j,
                entry=path,
            )
        acls.append(Acl(perms, scheme, id_value))
    return tuple(acls) or None


def is_zkshell_document(value: object) -> bool:
    """True when a parsed JSON object looks like a zk-shell backup."""
    if not isinstance(value, dict) or not value:
        return False
    first = next(iter(value.values()))
    return isinstance(first, dict) and "content" in first


def _add_entry(doc: JsonDocument, builder: StateBuilder, path: str, entry: object) -> None:
    builder.check_path(path, line=None)
    if not isinstance(entry, dict) or "content" not in entry:
        raise builder.error(
            "expected an object with 'content' and 'acls' (zk-shell backup entry)",
            line=None,
            entry=path,
        )
    ephemeral = entry.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise builder.error("'ephemeral' must be true or false", line=None, entry=path)
    content = entry["content"]
    if content is None:
        data = b""
    else:
        try:
            data = b64decode_strict(content)
        except ValueError as exc:
            raise doc.error(f"content: {exc}", path, "content", entry=path) from None
    acl = _acls(doc, entry.get("acls"), path)
    if not ephemeral:
        builder.add(path, data, line=None, acl=acl)


def zkshell_from_document(doc: JsonDocument, *, root: str) -> TreeState:
    top = doc.value
    builder = StateBuilder(doc.source, root)
    if not isinstance(top, dict):
        raise doc.error("a zk-shell backup must be a JSON object keyed by path")
    for path, entry in top.items():
        try:
            _add_entry(doc, builder, path, entry)
        except FormatError as exc:
            raise doc.locate(exc, path) from None
    return builder.build()


def load_zkshell_json(data: bytes, *, root: str, source: str = "<zk-shell json>") -> TreeState:
    """Read a zk-shell JSON backup as a desired state under ``root``."""
    return zkshell_from_document(parse_json(data, source), root=root)


def dump_zkshell_json(state: TreeState) -> bytes:
    """Write ``state`` the way zk-shell's ``JSONProxy`` does (``json.dump(..., indent=4)``)."""
    tree: dict[str, dict[str, object]] = {}
    for path in sorted(state):
        node = state[path]
        acls = [{"perms": a.perms, "id": {"scheme": a.scheme, "id": a.id}} for a in node.acl or ()]
        tree[path] = {"content": b64encode(node.data), "acls": acls}
    return json.dumps(tree, indent=4).encode("ascii")
