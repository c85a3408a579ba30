"""Strict JSON parsing with line numbers for errors found after parsing.

``json`` rejects malformed text with a line number, but once a document has
parsed, positions are gone. Errors about an entry (a bad path, bad base64, a
duplicate key) still need a line, so :class:`JsonDocument` re-scans the text
on demand and maps each key or array element to the line it starts on. The
scan only runs when an error is being reported.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._common import MAX_NESTING
from .errors import FormatError

Loc = tuple[str | int, ...]

# The decoder's own string scanner (C-accelerated); the stubs do not declare it.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

_WS = " \t\n\r"
_END_OF_LITERAL = ",]}" + _WS


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


@dataclass
class _Frame:
    is_object: bool
    key: str | int | None
    expect_key: bool = True
    seen: dict[str, int] = field(default_factory=dict)


@dataclass
class _Scan:
    lines: dict[Loc, int]
    duplicates: list[tuple[str, int, int]]  # key, line, line of first occurrence


def _scan(text: str) -> _Scan:
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    lines: dict[Loc, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    stack: list[_Frame] = []

    def here() -> Loc:
        return tuple(f.key for f in stack if f.key is not None)

    def value_starts(pos: int) -> None:
        if stack and not stack[-1].is_object:
            lines[here()] = line_at(pos)

    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _WS or c == ":":
            i += 1
        elif c == '"':
            try:
                s, end = _scanstring(text, i + 1, False)
            except ValueError:
                break
            top = stack[-1] if stack else None
            if top is not None and top.is_object and top.expect_key:
                top.key, top.expect_key = s, False
                line = line_at(i)
                if s in top.seen:
                    duplicates.append((s, line, top.seen[s]))
                else:
                    top.seen[s] = line
                lines[here()] = line
            else:
                value_starts(i)
            i = end
        elif c in "{[":
            value_starts(i)
            stack.append(_Frame(is_object=c == "{", key=None if c == "{" else 0))
            i += 1
        elif c in "}]":
            if stack:
                stack.pop()
            i += 1
        elif c == ",":
            if stack:
                top = stack[-1]
                if top.is_object:
                    top.expect_key = True
                elif isinstance(top.key, int):
                    top.key += 1
            i += 1
        else:
            value_starts(i)
            while i < n and text[i] not in _END_OF_LITERAL:
                i += 1
    return _Scan(lines, duplicates)


class JsonDocument:
    """A parsed JSON document that can say on which line an entry starts."""

    def __init__(self, text: str, value: Any, source: str) -> None:
        self.text = text
        self.value = value
        self.source = source
        self._scan: _Scan | None = None

    def line(self, *loc: str | int) -> int | None:
        """Line of the key or array element at ``loc`` (or of its nearest parent)."""
        if self._scan is None:
            self._scan = _scan(self.text)
        probe: Loc = tuple(loc)
        while probe:
            if probe in self._scan.lines:
                return self._scan.lines[probe]
            probe = probe[:-1]
        return None

    def error(self, problem: str, *loc: str | int, entry: str | None = None) -> FormatError:
        return FormatError(self.source, problem, line=self.line(*loc), entry=entry)

    def locate(self, exc: FormatError, *loc: str | int) -> FormatError:
        """``exc`` with the line of ``loc`` filled in, when it has none yet.

        Loaders check entries without lines (the scan costs as much as the
        parse) and only look the line up for the one error they report.
        """
        if exc.line is not None:
            return exc
        return FormatError(exc.source, exc.problem, line=self.line(*loc), entry=exc.entry)


# json.loads recurses once per level of arrays and objects, so a document is
# measured before it is parsed: 100,000 '[' would otherwise end in a
# RecursionError. With escapes removed, a string is a plain "..." pair.
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_PLAIN_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# The same reading, one token at a time, for the error path.
_TOKEN = re.compile(r'\\.|"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _check_nesting(text: str, source: str) -> None:
    """Raise FormatError when arrays and objects nest deeper than MAX_NESTING.

    Strings pair their quotes as json does, so up to the first syntax error
    json would report, the depth counted here is the depth json would reach.
    The common case runs in C (regular expressions, accumulate) at about the
    speed of json itself; only a document that is too deep is walked again,
    token by token, to find the line and column.
    """
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return
    brackets = _NOT_BRACKET.sub("", _PLAIN_STRING.sub("", _ESCAPE.sub("", text)))
    if max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) <= MAX_NESTING:
        return
    problem = f"nesting too deep: more than {MAX_NESTING} levels of arrays and objects"
    depth = 0
    for match in _TOKEN.finditer(text):
        depth += _STEP.get(match.group(), 0)
        if depth > MAX_NESTING:
            pos = match.start()
            line = text.count("\n", 0, pos) + 1
            column = pos - text.rfind("\n", 0, pos)
            raise FormatError(source, f"{problem} (column {column})", line=line)
    raise FormatError(source, problem)


def parse_json(data: bytes, source: str) -> JsonDocument:
    """Parse ``data`` as UTF-8 JSON, rejecting duplicate keys, or raise FormatError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormatError(source, f"not valid UTF-8 (byte offset {exc.start})", line=line) from None
    _check_nesting(text, source)
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        # exc.msg names the problem only; str(exc) and the document do not
        # leave this function, since the offending line may hold a secret.
        raise FormatError(
            source, f"malformed JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None
    except _DuplicateKeyError as exc:
        found = _scan(text).duplicates
        if found:
            key, line, first = found[0]
            raise FormatError(
                source, f"duplicate key (first at line {first})", line=line, entry=key
            ) from None
        raise FormatError(source, "duplicate key", entry=exc.key) from None
    except ValueError:
        # The only other ValueError json raises: an integer longer than
        # Python converts (sys.get_int_max_str_digits()).
        raise FormatError(
            source,
            f"malformed JSON: a number has more than {sys.get_int_max_str_digits()} digits",
        ) from None
    return JsonDocument(text, value, source)
