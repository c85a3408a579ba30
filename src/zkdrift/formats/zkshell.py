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

The keys are the destination paths of the copy: ``cp /app json://!tmp!b.json/app``
keys the nodes ``/app``, ``/app/db`` (absolute), ``cp /app json://!tmp!b.json/``
keys them ``/``, ``/db`` (relative to the copied node). Where the entries land
under the tree's root is decided once for the whole file:

1. with a prefix (``zkdrift desired import --prefix PATH``), every key is
   relative: ``/`` is PATH itself, ``/db`` is PATH/db;
2. else when every key is already under the root, the keys are taken as they
   are (absolute);
3. else when the file has a ``/`` key (the copied node itself, which zk-shell
   always writes), every key is relative to the root, unless the root itself
   is a key too: a copy of the whole namespace looks like that, so it is an
   error that asks for ``--prefix``;
4. else the first key outside the root is an error, which suggests ``--prefix``.

With root ``/`` the two readings coincide, so rule 2 takes every file as it is.
"""

from __future__ import annotations

import json

from zkdrift.errors import InvalidInputError
from zkdrift.model import Acl, TreeState
from zkdrift.paths import InvalidPathError, is_under, validate_path

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


def _add_entry(
    doc: JsonDocument, builder: StateBuilder, path: str, entry: object, key: str
) -> None:
    if not isinstance(entry, dict) or "content" not in entry:
        raise builder.error(
            "expected an object with 'content' and 'acls' (zk-shell backup entry)",
            line=None,
            entry=key,
        )
    ephemeral = entry.get("ephemeral", False)
    if not isinstance(ephemeral, bool):
        raise builder.error("'ephemeral' must be true or false", line=None, entry=key)
    content = entry["content"]
    if content is None:
        data = b""
    else:
        try:
            data = b64decode_strict(content)
        except ValueError as exc:
            raise doc.error(f"content: {exc}", key, "content", entry=key) from None
    acl = _acls(doc, entry.get("acls"), key)
    if not ephemeral:
        builder.add(path, data, line=None, entry=key, acl=acl)


def check_prefix(prefix: str, root: str) -> str:
    """``prefix`` when it is an absolute path within ``root``; else InvalidInputError."""
    try:
        validate_path(prefix)
    except InvalidPathError as exc:
        raise InvalidInputError(f"--prefix {prefix!r}: {exc}") from None
    if not is_under(prefix, root):
        raise InvalidInputError(f"--prefix {prefix!r} is outside the tree's root {root!r}")
    return prefix


def _valid(key: str) -> bool:
    try:
        validate_path(key)
    except InvalidPathError:
        return False
    return True


def key_base(keys: list[str], *, root: str, prefix: str | None = None) -> str | None:
    """The path a file's key ``/`` stands for (keys relative to it), or None when the
    keys are absolute: the rule in the module's documentation."""
    if prefix is not None:
        return prefix
    if all(_valid(k) and is_under(k, root) for k in keys):
        return None
    if "/" in keys:
        return root
    return None


def _rebased(key: str, base: str) -> str:
    if key == "/":
        return base
    return key if base == "/" else base + key


def zkshell_from_document(doc: JsonDocument, *, root: str, prefix: str | None = None) -> TreeState:
    top = doc.value
    builder = StateBuilder(doc.source, root)
    if not isinstance(top, dict):
        raise doc.error("a zk-shell backup must be a JSON object keyed by path")
    if prefix is not None:
        check_prefix(prefix, builder.root)
    elif builder.root != "/" and "/" in top and builder.root in top:
        # A copy of the whole namespace ('cp / json://FILE/') looks like this too:
        # its keys are absolute, and mostly outside the root.
        raise doc.error(
            f"both '/' and the root {builder.root!r} are keys: the keys could be absolute"
            f" or relative to the copied node; give --prefix {builder.root} to read them"
            " as relative",
            "/",
            entry="/",
        )
    base = key_base(list(top), root=builder.root, prefix=prefix)
    for key, entry in top.items():
        try:
            try:  # a key is a path, whichever way it is read
                validate_path(key)
            except InvalidPathError as exc:
                raise builder.error(
                    f"invalid ZooKeeper path: {exc}", line=None, entry=key
                ) from None
            if base is None and not is_under(key, builder.root):
                raise builder.error(
                    f"path {key!r} is outside root {builder.root!r} (a backup keyed relative"
                    " to the copied node has a '/' entry; or give --prefix PATH)",
                    line=None,
                    entry=key,
                )
            path = key if base is None else _rebased(key, base)
            _add_entry(doc, builder, path, entry, key)
        except FormatError as exc:
            raise doc.locate(exc, key) from None
    return builder.build()


def load_zkshell_json(
    data: bytes, *, root: str, source: str = "<zk-shell json>", prefix: str | None = None
) -> TreeState:
    """Read a zk-shell JSON backup as a desired state under ``root`` (keys placed by the
    rule in the module's documentation)."""
    return zkshell_from_document(parse_json(data, source), root=root, prefix=prefix)


def dump_zkshell_json(state: TreeState) -> bytes:
    """Write ``state`` the way zk-shell's ``JSONProxy`` does (``json.dump(..., indent=4)``)."""
    tree: dict[str, dict[str, object]] = {}
    for path in sorted(state):
        node = state[path]
        acls = [{"perms": a.perms, "id": {"scheme": a.scheme, "id": a.id}} for a in node.acl or ()]
        tree[path] = {"content": b64encode(node.data), "acls": acls}
    return json.dumps(tree, indent=4).encode("ascii")
