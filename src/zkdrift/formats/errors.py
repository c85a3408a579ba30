"""The one exception every importer and exporter raises for bad input."""

from __future__ import annotations

from zkdrift.errors import InvalidInputError


class FormatError(InvalidInputError, ValueError):
    """Input that cannot be read as a tree state.

    The message names the file (``source``), the line when one is known and the
    offending entry, e.g. ``desired.yaml:12: entry '/app/x y': path ... ``.
    The parts are also available as attributes for callers that format their
    own messages.
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        line: int | None = None,
        entry: str | None = None,
    ) -> None:
        self.source = source
        self.problem = problem
        self.line = line
        self.entry = entry
        location = source if line is None else f"{source}:{line}"
        what = "" if entry is None else f"entry {entry!r}: "
        super().__init__(f"{location}: {what}{problem}")

    def __reduce__(self) -> tuple[object, tuple[str, str, int | None, str | None]]:
        # Flows may pickle exceptions across processes; the default reduce
        # would call __init__ with the rendered message only.
        return (_rebuild, (self.source, self.problem, self.line, self.entry))


def _rebuild(source: str, problem: str, line: int | None, entry: str | None) -> FormatError:
    return FormatError(source, problem, line=line, entry=entry)
