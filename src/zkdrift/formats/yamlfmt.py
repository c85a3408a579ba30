"""YAML desired states, in a flat or a nested layout.

Flat: every key is an absolute path and exactly the listed paths become
nodes::

    /app/name: payments
    /app/logo: !!binary iVBORw0KGgo=
    /app/empty: null

Nested: keys are path segments below ``root``; a mapping is a node with
children, a scalar is a leaf. The reserved key ``_value`` gives a node with
children its own data. The document itself is the root node, so the root is
always part of a nested state (with ``_value`` at the top level as its data)::

    _value: root data
    db:
      _value: data of /app/db
      host: db.internal
      port: 5432
    flags: {}          # a node with no data and no children

Values in both layouts:

- A string is stored as its UTF-8 bytes. Scalars are taken as the text you
  wrote: ``5432`` is the bytes ``b"5432"``, ``yes`` is ``b"yes"`` and
  ``1.10`` stays ``b"1.10"`` (only null is resolved implicitly), so what you
  see is what ZooKeeper gets.
- ``!!binary`` (base64) gives raw bytes.
- ``null``, ``~`` or nothing at all means empty data.
- Lists, and values with other explicit tags, are rejected.

Keys must be strings; duplicate keys in one mapping are an error (YAML
parsers usually keep the last one silently). A layout is chosen from the
keys of the top-level mapping: all absolute means flat, none absolute means
nested, a mix is an error. An empty mapping is an empty state. Merge keys
(``<<: *anchor``) work in the nested layout.

:func:`dump_yaml` writes the flat layout, sorted by path: UTF-8 text as
strings, anything else (non-UTF-8, control characters) as ``!!binary``. The
output means the same thing to any standard YAML loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

from zkdrift.model import TreeState
from zkdrift.paths import join

from ._common import StateBuilder
from .errors import FormatError

VALUE_KEY = "_value"

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"


class _Mapping(dict[Any, Any]):
    """A constructed YAML mapping that remembers the line of each key."""

    lines: dict[Any, int]

    def __init__(self) -> None:
        super().__init__()
        self.lines = {}


_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that keeps plain scalars as text, tracks lines, rejects duplicate keys."""

    source = "<yaml>"

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> _Mapping:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            shown = key if isinstance(key, str) else repr(key)
            if not isinstance(key, str):
                raise FormatError(
                    self.source,
                    f"mapping keys must be strings, got {type(key).__name__} (quote the key)",
                    line=line,
                    entry=shown,
                )
            if key in seen:
                raise FormatError(
                    self.source,
                    f"duplicate key (first at line {seen[key]})",
                    line=line,
                    entry=key,
                )
            seen[key] = line
        self.flatten_mapping(node)
        result = _Mapping()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):  # a key brought in by a merge
                raise FormatError(
                    self.source,
                    "mapping keys must be strings (quote the key)",
                    line=key_node.start_mark.line + 1,
                    entry=repr(key),
                )
            result[key] = self.construct_object(value_node, deep=deep)
            result.lines[key] = key_node.start_mark.line + 1
        return result


def _construct_map(loader: _Loader, node: Node) -> Iterator[_Mapping]:
    data = _Mapping()
    yield data
    assert isinstance(node, MappingNode)
    built = loader.construct_mapping(node)
    data.update(built)
    data.lines.update(built.lines)


_Loader.add_constructor(_MAP_TAG, _construct_map)
# Resolve nothing implicitly except null and merge keys: plain scalars stay text.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL_TAG, _MERGE_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse(data: bytes, source: str) -> object:
    loader = _Loader(data)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        raise FormatError(
            source, f"malformed YAML: {problem}", line=line, entry=_excerpt(data, line)
        ) from None
    except yaml.reader.ReaderError as exc:
        line = data.count(b"\n", 0, exc.position) + 1
        raise FormatError(source, f"unreadable YAML: {exc.reason}", line=line) from None
    except yaml.YAMLError as exc:
        raise FormatError(source, f"malformed YAML: {exc}") from None
    finally:
        loader.dispose()


def _excerpt(data: bytes, line: int | None) -> str | None:
    if line is None:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1].strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _value_bytes(builder: StateBuilder, value: object, *, line: int, entry: str) -> bytes:
    if isinstance(value, bytes):
        return value
    text = builder.text_bytes(value, line=line, entry=entry)
    if text is not None:
        return text
    raise builder.error(
        f"value must be a string, !!binary or null, got {type(value).__name__}",
        line=line,
        entry=entry,
    )


def _load_flat(top: _Mapping, builder: StateBuilder) -> None:
    for key, value in top.items():
        line = top.lines[key]
        if isinstance(value, dict | list):
            raise builder.error(
                "in the flat layout a value must be a string, !!binary or null",
                line=line,
                entry=key,
            )
        builder.add(key, _value_bytes(builder, value, line=line, entry=key), line=line)


def _load_nested(
    mapping: _Mapping, path: str, rel: str, builder: StateBuilder, line: int | None
) -> None:
    own = mapping.get(VALUE_KEY)
    own_line = mapping.lines.get(VALUE_KEY, line or 0)
    if isinstance(own, dict | list):
        raise builder.error(
            f"{VALUE_KEY} must be a string, !!binary or null",
            line=own_line,
            entry=rel or VALUE_KEY,
        )
    builder.add(
        path,
        _value_bytes(builder, own, line=own_line, entry=rel or path),
        line=line,
        entry=rel or path,
    )
    for key, value in mapping.items():
        if key == VALUE_KEY:
            continue
        key_line = mapping.lines[key]
        child_rel = f"{rel}/{key}" if rel else key
        if "/" in key:
            raise builder.error(
                "a nested key is one path segment and must not contain '/'",
                line=key_line,
                entry=child_rel,
            )
        child = join(path, key)
        builder.check_path(child, line=key_line, entry=child_rel)
        if isinstance(value, _Mapping):
            _load_nested(value, child, child_rel, builder, key_line)
        elif isinstance(value, list):
            raise builder.error(
                "lists are not supported; use a mapping of children",
                line=key_line,
                entry=child_rel,
            )
        else:
            data = _value_bytes(builder, value, line=key_line, entry=child_rel)
            builder.add(child, data, line=key_line, entry=child_rel)


def load_yaml(data: bytes, *, root: str, source: str = "<yaml>") -> TreeState:
    """Read a flat or nested YAML desired state under ``root`` (see module docs)."""
    builder = StateBuilder(source, root)
    top = _parse(data, source)
    if top is None:
        raise FormatError(source, "the document is empty; expected a mapping", line=1)
    if not isinstance(top, _Mapping):
        raise FormatError(
            source, f"expected a mapping at the top level, got {type(top).__name__}", line=1
        )
    keys = list(top)
    if not keys:
        return builder.build()
    flat = keys[0].startswith("/")
    for key in keys:
        if key.startswith("/") != flat:
            raise builder.error(
                "mixes absolute paths and nested segments at the top level; "
                f"the first key {keys[0]!r} chose the {'flat' if flat else 'nested'} layout",
                line=top.lines[key],
                entry=key,
            )
    if flat:
        _load_flat(top, builder)
    else:
        _load_nested(top, builder.root, "", builder, None)
    return builder.build()


# YAML's printable set (yaml.reader.Reader.NON_PRINTABLE) minus the characters a
# loader would normalise or strip: CR and the other line breaks, and the BOM.
_NOT_TEXT = re.compile(
    "[^\x09\x0a\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _as_text(data: bytes) -> str | None:
    """``data`` as a string when YAML can carry it unchanged, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _NOT_TEXT.search(text) else text


_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(state: TreeState) -> str:
    """Write ``state`` as flat YAML: ``/abs/path: value``, sorted by path."""
    mapping: dict[str, str | bytes] = {}
    for path in sorted(state):
        data = state[path].data
        text = _as_text(data)
        mapping[path] = data if text is None else text
    if not mapping:
        return "{}\n"
    return yaml.dump(
        mapping,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=4096,
    )
