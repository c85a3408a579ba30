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

A node's ACL, when the desired state should say it, is the reserved key
``_acl``: a list of ``scheme:id:perms`` entries, next to ``_value``. In the
flat layout the value is then a mapping of the two keys::

    db:
      _acl: [digest:ops:x3Qm0aSCQ4Yw1bD2sKDuTOG0kcQ=:cdrwa]
      password:
        _value: hunter2
        _acl: [digest:ops:x3Qm0aSCQ4Yw1bD2sKDuTOG0kcQ=:cdrwa]

    /app/db/password: {_value: hunter2, _acl: ["digest:ops:x3Q…=:cdrwa"]}

Nodes without ``_acl`` get the tree's ACL policy when an apply creates them.

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

A document is refused, naming the limit, line and column, when it nests
deeper than :data:`MAX_NESTING` (100) levels, holds more than
:data:`MAX_NODES` nodes once aliases are expanded, uses more than
:data:`MAX_ALIASES` aliases, or has an alias inside its own anchor. Error
messages never quote the source.

:func:`dump_yaml` writes the flat layout, sorted by path: UTF-8 text as
strings, anything else (non-UTF-8, control characters) as ``!!binary``. The
output means the same thing to any standard YAML loader.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import AliasEvent, Event, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from zkdrift.model import Acl, TreeState
from zkdrift.paths import join
from zkdrift.policy import parse_acl_list

from ._common import MAX_NESTING, StateBuilder
from .errors import FormatError

VALUE_KEY = "_value"
ACL_KEY = "_acl"
_RESERVED = {VALUE_KEY, ACL_KEY}

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"


class _Mapping(dict[Any, Any]):
    """A constructed YAML mapping that remembers the line of each key."""

    lines: dict[Any, int]

    def __init__(self) -> None:
        super().__init__()
        self.lines = {}


# Limits on what one document may expand to. Aliases make YAML a compression
# format: nine lines of nine aliases each describe 9**9 nodes ("billion
# laughs"). The composer below counts nodes as if every alias were expanded,
# which is the work the loaders do when they walk the result, and stops as
# soon as a limit is passed, so a bomb costs a few thousand events, not hours.
# A flat file of 250,000 entries (two nodes each) still fits.
MAX_NODES = 500_000
# Merge keys (``<<: *defaults``) are the real use of aliases; a file with
# more than this many references is not hand-written configuration.
MAX_ALIASES = 10_000

_TOO_DEEP = f"nesting too deep: more than {MAX_NESTING} levels of mappings and lists"
# libyaml's scanner stops at 1000 levels of flow collections, and may get
# there before the composer sees level 100 (it reads ahead for keys).
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


class _Position(Protocol):
    """Where an event or node starts: PyYAML's and libyaml's marks both have these."""

    line: int
    column: int


class _BoundedComposer(Composer):
    """PyYAML's composer with limits on nesting, expanded size and alias use.

    Every limit is checked while events arrive, before the next one is read.
    A node's expanded size and height are recorded when its anchor can be
    referred to, so an alias costs what its target costs; an alias to a node
    that is still being composed (``a: &a [*a]``) is refused, because
    walking it would never end.
    """

    source: str
    # Provided by the event source the loader combines this with.
    peek_event: Callable[[], Event]

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source
        self._depth = 0
        self._deepest = 0
        self._nodes = 0
        self._aliases = 0
        self._extent: dict[Node, tuple[int, int]] = {}

    def _error(self, problem: str, mark: _Position | None) -> FormatError:
        if mark is None:
            return FormatError(self.source, problem)
        return FormatError(self.source, f"{problem} (column {mark.column + 1})", line=mark.line + 1)

    def _reach(self, level: int, mark: _Position | None) -> None:
        if level > MAX_NESTING:
            raise self._error(_TOO_DEEP, mark)
        if level > self._deepest:
            self._deepest = level

    def _count(self, nodes: int, mark: _Position | None) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise self._error(
                f"too many nodes: more than {MAX_NODES:,} with aliases expanded", mark
            )

    def _alias(self, event: AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self._error(f"too many aliases: more than {MAX_ALIASES:,}", event.start_mark)
        target = self.anchors.get(event.anchor)
        if target is None:  # an undefined alias: PyYAML reports it
            return
        extent = self._extent.get(target)
        if extent is None:
            raise self._error(
                "recursive alias: it refers to a node that contains it", event.start_mark
            )
        nodes, height = extent
        self._count(nodes, event.start_mark)
        self._reach(self._depth + height, event.start_mark)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._alias(event)
            return super().compose_node(parent, index)
        assert isinstance(event, NodeEvent)
        depth = self._depth = self._depth + 1
        self._reach(depth, event.start_mark)
        self._count(1, event.start_mark)
        if event.anchor is None:
            node = super().compose_node(parent, index)
        else:
            # Measure this node on its own: its size and its height are what
            # each alias to it adds.
            before, outer_deepest = self._nodes - 1, self._deepest
            self._deepest = depth
            node = super().compose_node(parent, index)
            if node is not None:
                self._extent[node] = (self._nodes - before, self._deepest - depth + 1)
            self._deepest = max(outer_deepest, self._deepest)
        self._depth = depth - 1
        return node


class _PurePythonEvents(Reader, Scanner, Parser):
    """PyYAML's own parser, for installations without libyaml."""

    def __init__(self, stream: bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


def _event_source() -> type[Any]:
    # libyaml's parser hands over the same events, much faster; only the
    # composing (where the limits live) happens in Python either way.
    try:
        from yaml._yaml import CParser
    except ImportError:
        return _PurePythonEvents
    return CParser


_Events = _event_source()

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"


class _Loader(_BoundedComposer, _Events, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
    """A safe loader that keeps plain scalars as text, tracks lines, rejects
    duplicate keys and enforces the limits of :class:`_BoundedComposer`."""

    def __init__(self, stream: bytes, source: str) -> None:
        _Events.__init__(self, stream)
        _BoundedComposer.__init__(self, source)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except FormatError:
            raise
        except (ValueError, KeyError, TypeError, OverflowError):
            if not isinstance(node, ScalarNode):
                raise
            # PyYAML's constructors for explicit scalar tags (!!int, !!bool,
            # !!timestamp, ...) fail with builtin errors that quote the value.
            tag = node.tag.replace(_YAML_TAG_PREFIX, "!!")
            raise self._error(f"a value tagged {tag} cannot be read", node.start_mark) from None

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

# A Python repr in PyYAML's messages: the character, tag, anchor or handle it
# found. One character helps ("found character '\\t' that cannot start any
# token"); anything longer may be a piece of a file that was never YAML (a key
# file, an environment dump), so it is left out.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')


def _keep_single_characters(text: str) -> str:
    def shown(match: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(match.group())
        except (ValueError, SyntaxError):
            return ""
        return match.group() if isinstance(value, str) and len(value) == 1 else ""

    return re.sub(r" ([;,:])", r"\1", " ".join(_QUOTED.sub(shown, text).split()))


def _mark_text(mark: Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _describe(exc: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    """The problem and its line, from PyYAML's parts: never its rendered message,
    which quotes the source line around the mark."""
    mark = exc.problem_mark or exc.context_mark
    if exc.problem == _LIBYAML_TOO_DEEP:
        where = "" if mark is None else f" (column {mark.column + 1})"
        return f"{_TOO_DEEP}{where}", None if mark is None else mark.line + 1
    problem = _keep_single_characters(exc.problem or "") or "malformed YAML"
    if exc.problem_mark is not None:
        problem = f"{problem} (column {exc.problem_mark.column + 1})"
    if exc.context:
        context = _keep_single_characters(exc.context)
        if exc.context_mark is not None and exc.context_mark is not exc.problem_mark:
            context = f"{context} ({_mark_text(exc.context_mark)})"
        problem = f"{context}: {problem}"
    return f"malformed YAML: {problem}", None if mark is None else mark.line + 1


def _parse(data: bytes, source: str) -> object:
    loader = _Loader(data, source)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        problem, line = _describe(exc)
        raise FormatError(source, problem, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = data.count(b"\n", 0, exc.position) + 1
        raise FormatError(source, f"unreadable YAML: {exc.reason}", line=line) from None
    except yaml.YAMLError as exc:
        raise FormatError(source, f"malformed YAML ({type(exc).__name__})") from None
    finally:
        loader.dispose()


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


def _acl_of(
    builder: StateBuilder, mapping: _Mapping, *, line: int | None, entry: str
) -> tuple[Acl, ...] | None:
    """The ``_acl`` of a node's mapping, parsed; None when it has none."""
    if ACL_KEY not in mapping:
        return None
    raw = mapping[ACL_KEY]
    at = mapping.lines.get(ACL_KEY, line or 0)
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
        raise builder.error(
            f"{ACL_KEY} must be a non-empty list of scheme:id:perms entries", line=at, entry=entry
        )
    try:
        return parse_acl_list(raw)
    except ValueError as exc:
        raise builder.error(f"{ACL_KEY}: {exc}", line=at, entry=entry) from None


def _load_flat(top: _Mapping, builder: StateBuilder) -> None:
    for key, value in top.items():
        line = top.lines[key]
        acl = None
        if isinstance(value, _Mapping) and value and set(value) <= _RESERVED:
            acl = _acl_of(builder, value, line=line, entry=key)
            value = value.get(VALUE_KEY)
        if isinstance(value, dict | list):
            raise builder.error(
                "in the flat layout a value must be a string, !!binary, null or a mapping"
                f" of {VALUE_KEY} and {ACL_KEY}",
                line=line,
                entry=key,
            )
        data = _value_bytes(builder, value, line=line, entry=key)
        builder.add(key, data, line=line, acl=acl)


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
        acl=_acl_of(builder, mapping, line=line, entry=rel or path),
    )
    for key, value in mapping.items():
        if key in _RESERVED:
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
    """Write ``state`` as flat YAML: ``/abs/path: value``, sorted by path; a node with
    an ACL as ``/abs/path: {_value: value, _acl: [...]}``."""
    mapping: dict[str, Any] = {}
    for path in sorted(state):
        node = state[path]
        text = _as_text(node.data)
        value: str | bytes = node.data if text is None else text
        if node.acl is None:
            mapping[path] = value
        else:
            mapping[path] = {VALUE_KEY: value, ACL_KEY: [a.render() for a in node.acl]}
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
