"""Help that reads like Click's own: ``NAME``, ``PATH``, ``INTEGER``, ``TEXT``.

Typer 0.29, which carries its own copy of Click, labels values with Python
type names (``--limit <int>``, ``--json <bool>`` after a flag) and writes a
required argument as ``{name}`` in usage lines and error messages. Scripts
and people know Click's conventions, so :func:`click_style` gives every
parameter of the built command tree Click's metavar once, where the tree is
built: arguments are named in capitals (``NAME``, ``[PATH]``, ``[NAMES]...``),
options by the kind of value they take, and flags by nothing at all.

A parameter declared with its own ``metavar`` keeps it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath
from typing import Any, get_args

from typer.core import TyperArgument, TyperGroup, TyperOption

# Click's names for the value types zkdrift's options take.
_TYPE_METAVARS: dict[type, str] = {
    bool: "BOOLEAN",
    int: "INTEGER",
    float: "FLOAT",
    str: "TEXT",
}
# Click's DateTime metavar: the formats it accepts.
_DATETIME_METAVAR = "[%Y-%m-%d|%Y-%m-%dT%H:%M:%S|%Y-%m-%d %H:%M:%S]"


class _ClickStyleArgument(TyperArgument):
    """An argument shown as Click shows one: ``NAME``, ``[NAME]``, ``NAME...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the metavar already says what it is

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required:
            name = f"[{name}]"
        if self.nargs != 1:
            name += "..."
        return name


def option_metavar(option: TyperOption) -> str:
    """Click's metavar for an option's value (``INTEGER``, ``PATH``, ``[a|b]``...)."""
    descriptor = option.type_descriptor
    if descriptor.is_choice and descriptor.choices is not None:
        return "[" + "|".join(str(c) for c in descriptor.choices) + "]"
    if descriptor.is_path:
        return {"file": "FILE", "dir": "DIRECTORY"}.get(descriptor.path_type, "PATH")
    annotation: Any = descriptor.annotation
    if descriptor.is_list:
        (annotation,) = get_args(annotation) or (str,)
    if annotation is dt.datetime:
        return _DATETIME_METAVAR
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "PATH"
    for kind, metavar in _TYPE_METAVARS.items():
        if annotation is kind:
            return metavar
    return getattr(annotation, "__name__", "TEXT").upper()


def click_style(command: Any) -> None:
    """Give ``command`` (a built Typer command or group) and everything under it
    Click's metavars and usage forms."""
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _ClickStyleArgument
        elif (
            isinstance(param, TyperOption)
            and param.metavar is None
            and not (param.is_flag or param.count)
        ):
            param.metavar = option_metavar(param)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            click_style(sub)
