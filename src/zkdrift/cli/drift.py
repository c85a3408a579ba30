"""``zkdrift diff`` and ``zkdrift history``.

``diff`` exits 0 when there are no differences, 2 when there are, 1 on error
(like terraform's ``-detailed-exitcode``), with or without ``--json``.
Values are shown through the Redactor: secrets become digests and sizes,
binary values are marked, text is diffed line by line. Differences are named
with the shared words of :mod:`zkdrift.vocabulary`: desired against live in
drift words (``changed``, ``missing live``, ``live only``, ``ACL changed``),
snapshots against each other (and live against a snapshot) in history words
(``created``, ``deleted``, ``changed``). JSON keeps the machine ``kind`` and
adds its ``label``.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.text import Text

from zkdrift.cli.common import (
    EXIT_DIFFERENCES,
    AsJson,
    TreeName,
    console,
    emit_json,
    redactor,
    state,
)
from zkdrift.drift import (
    DriftReport,
    SnapshotDiff,
    check_against_snapshot,
    check_drift,
    compare_snapshots,
)
from zkdrift.errors import InvalidInputError
from zkdrift.history import EventKind, HistoryEvent, path_history
from zkdrift.model import Acl, ChangeKind, Znode
from zkdrift.reconcile.promote import compare_trees, parse_side
from zkdrift.redact import Redactor, binary_placeholder
from zkdrift.vocabulary import drift_kind, history_kind, utc_text

# Live against a recorded snapshot is history seen backwards: the reference
# snapshot sits in the desired slot, so "an apply would add it" means "deleted
# since".
_FLIP = {
    ChangeKind.ADDED: ChangeKind.REMOVED,
    ChangeKind.REMOVED: ChangeKind.ADDED,
    ChangeKind.DATA_CHANGED: ChangeKind.DATA_CHANGED,
    ChangeKind.ACL_CHANGED: ChangeKind.ACL_CHANGED,
}


@dataclass(frozen=True)
class _Entry:
    """One difference oriented for display: from ``before`` to ``after``."""

    path: str
    kind: ChangeKind
    label: str  # the shared word for it (zkdrift.vocabulary)
    before: Znode | None
    after: Znode | None
    classification: str | None = None
    # The path whose secret rule renders the values (another tree's, for two trees).
    shown_as: str | None = None


def _report_label(report: DriftReport, kind: ChangeKind) -> str:
    """Desired against live: drift words ("missing live", "live only"); live against
    a recorded snapshot: history words ("created", "deleted")."""
    if report.against == "snapshot":
        return history_kind(_FLIP[kind])
    return drift_kind(kind)


def _entries_of_report(report: DriftReport) -> list[_Entry]:
    if report.against == "snapshot":
        # The reference snapshot sits in the desired slot; show what changed
        # from it to live.
        return [
            _Entry(
                i.path,
                _FLIP[i.kind],
                _report_label(report, i.kind),
                i.desired,
                i.live,
                str(i.classification),
            )
            for i in report.items
        ]
    return [
        _Entry(i.path, i.kind, drift_kind(i.kind), i.live, i.desired, str(i.classification))
        for i in report.items
    ]


def _labelled(doc: dict[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """A JSON document whose items keep their machine ``kind`` and gain its ``label``."""
    items = [{**item, "label": label(item["kind"])} for item in doc["items"]]
    return {**doc, "items": items}


def _is_plain_text(redactor: Redactor, path: str, data: bytes, rendered: str) -> bool:
    return not redactor.is_secret(path) and rendered != binary_placeholder(data)


def _acl_text(acl: tuple[Acl, ...] | None) -> str:
    return "(not read)" if acl is None else ",".join(a.render() for a in sorted(acl)) or "(none)"


def value_lines(
    redactor: Redactor, path: str, before: bytes | None, after: bytes | None
) -> list[str]:
    """Diff lines (``-``/``+``/`` `` prefixed) from one value to another, redacted."""
    lines: list[str] = []
    old = None if before is None else redactor.render(path, before)
    new = None if after is None else redactor.render(path, after)
    if (
        before is not None
        and after is not None
        and old is not None
        and new is not None
        and _is_plain_text(redactor, path, before, old)
        and _is_plain_text(redactor, path, after, new)
    ):
        a, b = old.splitlines(), new.splitlines()
        if len(a) > 1 or len(b) > 1:
            return [
                line
                for line in difflib.unified_diff(a, b, lineterm="", n=3)
                if not line.startswith(("---", "+++"))
            ]
    if old is not None:
        lines.extend("-" + line for line in (old.splitlines() or ["<empty>"]))
    if new is not None:
        lines.extend("+" + line for line in (new.splitlines() or ["<empty>"]))
    return lines


def _style(line: str) -> str | None:
    if line.startswith("/"):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    if line.startswith("@@"):
        return "cyan"
    return None


def _print_lines(lines: Sequence[str], indent: str = "") -> None:
    if not console.is_terminal:
        # Plain text for pipes and files: a thousand diffs through rich's
        # renderer one print at a time would cost more than the check itself.
        sys.stdout.write("".join(f"{indent}{line}\n" for line in lines))
        return
    text = Text()
    for line in lines:
        text.append(indent + line + "\n", style=_style(line) or "")
    console.print(text, end="", markup=False, highlight=False)


def _entry_lines(redactor: Redactor, entry: _Entry) -> list[str]:
    label = entry.label
    if entry.classification:
        label += f", {entry.classification}"
    out = [f"{entry.path}  ({label})"]
    if entry.kind is ChangeKind.ACL_CHANGED:
        assert entry.before is not None and entry.after is not None
        out.append("-acl " + _acl_text(entry.before.acl))
        out.append("+acl " + _acl_text(entry.after.acl))
        return out
    out.extend(
        value_lines(
            redactor,
            entry.shown_as or entry.path,
            None if entry.before is None else entry.before.data,
            None if entry.after is None else entry.after.data,
        )
    )
    return out


def _parse_against(against: str) -> int | None:
    if against == "desired":
        return None
    kind, _, ident = against.partition(":")
    if kind != "snapshot" or not ident.isdigit():
        raise InvalidInputError(
            f"--against {against!r}: expected 'desired' or 'snapshot:ID' (e.g. snapshot:12)"
        )
    return int(ident)


def _print_entries(redactor: Redactor, entries: Sequence[_Entry], header: Sequence[str]) -> None:
    if not entries:
        return
    lines = list(header)
    for entry in entries:
        lines.extend(_entry_lines(redactor, entry))
    _print_lines(lines)


def diff_command(
    name: TreeName,
    against: Annotated[
        str,
        typer.Option(
            "--against", help="'desired' (default) or 'snapshot:ID' to compare live with."
        ),
    ] = "desired",
    from_id: Annotated[
        int | None, typer.Option("--from", help="Compare two snapshots: from ID ...")
    ] = None,
    to_id: Annotated[int | None, typer.Option("--to", help="... to ID (no live read).")] = None,
    snapshot_id: Annotated[
        int | None,
        typer.Option(
            "--snapshot", help="Use this recorded snapshot as live instead of reading ZooKeeper."
        ),
    ] = None,
    against_tree: Annotated[
        str | None,
        typer.Option(
            "--against-tree",
            metavar="TREE",
            help="Compare NAME with another registered tree, NAME's paths mapped onto its root.",
        ),
    ] = None,
    compare: Annotated[
        str,
        typer.Option(
            "--compare", help="With --against-tree: compare both trees' 'live' or 'desired' state."
        ),
    ] = "live",
    as_json: AsJson = False,
) -> None:
    """Compare live with the desired state (or snapshots, or another tree).
    Exit 0 none, 2 differences, 1 error."""
    if against_tree is not None:
        if from_id is not None or to_id is not None or snapshot_id is not None:
            raise InvalidInputError(
                "--against-tree compares two trees; drop --from/--to/--snapshot"
            )
        if against != "desired":
            raise InvalidInputError("--against-tree compares two trees; drop --against")
        _diff_trees(name, against_tree, compare, as_json)
        return
    if compare != "live":
        raise InvalidInputError("--compare goes with --against-tree")
    if from_id is not None or to_id is not None:
        if from_id is None or to_id is None:
            raise InvalidInputError("--from and --to go together: give both snapshot ids")
        if against != "desired" or snapshot_id is not None:
            raise InvalidInputError("--from/--to compares two snapshots; drop --against/--snapshot")
        state.read_only()  # history only: no live read, nothing recorded
        rd = redactor()
        compared = compare_snapshots(state.app, name, from_id, to_id)
        _show_changes(rd, compared, as_json)
        if compared.changes:
            raise typer.Exit(EXIT_DIFFERENCES)
        return
    reference = _parse_against(against)
    rd = redactor()
    if reference is None:
        report = check_drift(state.app, name, snapshot_id=snapshot_id)
        header = [
            f"--- live (snapshot {report.snapshot_id})",
            f"+++ desired (revision {report.desired_revision})",
        ]
    else:
        report = check_against_snapshot(state.app, name, reference, snapshot_id=snapshot_id)
        header = [f"--- snapshot {reference}", f"+++ live (snapshot {report.snapshot_id})"]
    if as_json:
        emit_json(
            _labelled(report.as_json(rd), lambda kind: _report_label(report, ChangeKind(kind)))
        )
    else:
        _print_entries(rd, _entries_of_report(report), header)
        if report.has_differences:
            console.print(
                f"{report.total:,} differences: {report.drift} drift, {report.pending} pending, "
                f"{report.conflict} conflict (drift run {report.run_id})",
                markup=False,
            )
        else:
            what = (
                f"desired revision {report.desired_revision}"
                if reference is None
                else f"snapshot {reference}"
            )
            console.print(
                f"no differences: live (snapshot {report.snapshot_id}) matches {what} "
                f"(drift run {report.run_id})",
                markup=False,
            )
    if report.has_differences:
        raise typer.Exit(EXIT_DIFFERENCES)


def _tree_label(kind: ChangeKind, source: str, target: str) -> str:
    """Two trees' words: ``only in staging``, ``only in prod``, ``changed``, ``ACL changed``."""
    if kind is ChangeKind.ADDED:
        return f"only in {source}"
    if kind is ChangeKind.REMOVED:
        return f"only in {target}"
    return drift_kind(kind)


def _diff_trees(source: str, target: str, compare: str, as_json: bool) -> None:
    rd = redactor()
    compared = compare_trees(state.app, source, target, parse_side(compare, "--compare"))
    if as_json:
        doc = compared.as_json(rd)
        for item in doc["items"]:
            item["label"] = _tree_label(ChangeKind(item["kind"]), source, target)
        emit_json(doc)
    else:
        entries = [
            _Entry(
                c.path,
                c.kind,
                _tree_label(c.kind, source, target),
                c.before,
                c.after,
                shown_as=compared.shown_as(c.path, rd),
            )
            for c in compared.changes
        ]
        mapping = (
            ""
            if compared.source_root == compared.target_root
            else f", {compared.source_root} mapped onto {compared.target_root}"
        )
        header = [
            f"--- {target} ({compared.target.side}, {compared.target.label})",
            f"+++ {source} ({compared.source.side}, {compared.source.label}{mapping})",
        ]
        _print_entries(rd, entries, header)
        if compared.has_differences:
            console.print(f"{len(compared.changes):,} differences", markup=False)
        else:
            console.print(
                f"no differences: {source} ({compared.source.label}) matches {target}"
                f" ({compared.target.label})",
                markup=False,
            )
    if compared.has_differences:
        raise typer.Exit(EXIT_DIFFERENCES)


def _show_changes(rd: Redactor, compared: SnapshotDiff, as_json: bool) -> None:
    if as_json:
        emit_json(_labelled(compared.as_json(rd), history_kind))
        return
    entries = [
        _Entry(c.path, c.kind, history_kind(c.kind), c.before, c.after) for c in compared.changes
    ]
    header = [f"--- snapshot {compared.from_id}", f"+++ snapshot {compared.to_id}"]
    _print_entries(rd, entries, header)
    if compared.changes:
        console.print(f"{len(compared.changes):,} differences", markup=False)
    else:
        console.print(
            f"no differences between snapshots {compared.from_id} and {compared.to_id}",
            markup=False,
        )


def history_command(
    name: TreeName,
    path: Annotated[
        str | None, typer.Argument(help="A path: its history and its subtree's.")
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also list what the first snapshot found (shown by default when PATH is given).",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """When each path was created, changed and deleted across snapshots (values redacted)."""
    state.read_only()
    rd = redactor()
    events = path_history(state.app, name, path, include_initial=show_all or path is not None)
    if as_json:
        emit_json([e.as_json(rd) for e in events])
        return
    if not events:
        where = f" under {path}" if path else ""
        console.print(f"no recorded history{where} in tree {name!r}", markup=False)
        return
    for event in events:
        _print_event(rd, event)


def _print_event(redactor: Redactor, event: HistoryEvent) -> None:
    versions = ""
    if event.before is not None and event.after is not None:
        versions = f"  (version {event.before.version} -> {event.after.version})"
    elif event.after is not None:
        versions = f"  (version {event.after.version})"
    when = utc_text(event.at)
    console.print(
        f"{when}  snapshot {event.snapshot_id}  {event.kind}  {event.path}{versions}",
        markup=False,
        style="bold" if event.kind is not EventKind.INITIAL else None,
    )
    before = None if event.before is None else event.before.data
    after = None if event.after is None else event.after.data
    lines = [] if before == after else value_lines(redactor, event.path, before, after)
    if event.acl_changed:
        assert event.before is not None and event.after is not None
        lines += ["-acl " + _acl_text(event.before.acl), "+acl " + _acl_text(event.after.acl)]
    _print_lines(lines, indent="    ")
