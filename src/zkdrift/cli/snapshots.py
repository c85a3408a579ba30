"""``zkdrift snapshot``, ``snapshots``, ``show`` and ``export``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree as RichTree

from zkdrift.cli.common import (
    AsJson,
    Limit,
    SnapshotId,
    TreeName,
    capture_progress,
    console,
    emit_json,
    redactor,
    state,
    write_export,
)
from zkdrift.errors import InvalidInputError
from zkdrift.model import Znode
from zkdrift.paths import is_under, validate_path
from zkdrift.redact import Redactor, node_json
from zkdrift.snapshot import export_snapshot, list_snapshots, load_snapshot, take_snapshot
from zkdrift.vocabulary import utc_text


def snapshot(name: TreeName, as_json: AsJson = False) -> None:
    """Capture the live tree into the database as a new snapshot."""
    previous = list_snapshots(state.app, name, limit=1)
    total = previous[0].nodes if previous else None
    with capture_progress(f"reading {name}", enabled=not as_json, total=total) as progress:
        result = take_snapshot(state.app, name, progress=progress)
    if as_json:
        emit_json(result.as_json())
        return
    if result.superseded:
        console.print(
            f"snapshot [bold]{result.snapshot_id}[/] of [bold]{escape(name)}[/], read at the same"
            " time and seeing later changes, was recorded first; this read added nothing newer"
        )
        return
    duration = result.read_seconds + result.write_seconds
    fuzzy = " (nodes changed while it was read)" if result.fuzzy else ""
    console.print(
        f"snapshot [bold]{result.snapshot_id}[/] of [bold]{escape(name)}[/]: "
        f"{result.node_count:,} nodes, {result.changed:,} changed since the last snapshot "
        f"(+{result.added} -{result.removed} ~{result.modified}) in {duration:.2f}s{fuzzy}"
    )


def snapshots(name: TreeName, limit: Limit = 50, as_json: AsJson = False) -> None:
    """List a tree's snapshots, newest first."""
    state.read_only()
    infos = list_snapshots(state.app, name, limit=limit)
    if as_json:
        emit_json([i.as_json() for i in infos])
        return
    if not infos:
        console.print(
            f"tree {name!r} has no snapshots yet; take one with 'zkdrift snapshot {name}'",
            markup=False,
        )
        return
    table = Table("id", "taken", "nodes", "bytes", "+", "-", "~", "seconds")
    for i in infos:
        table.add_row(
            str(i.id),
            utc_text(i.taken_at),
            f"{i.nodes:,}",
            f"{i.bytes:,}",
            str(i.added),
            str(i.removed),
            str(i.modified),
            f"{i.seconds:.2f}",
        )
    console.print(table)


def _node_json(node: Znode, rd: Redactor) -> dict[str, Any]:
    stat = node.stat
    shown = node_json(rd, node) or {}
    return {
        "path": node.path,
        **shown,
        "version": stat.version if stat else None,
        "mtime": stat.mtime if stat else None,
        "ephemeral": node.ephemeral,
    }


def show(
    name: TreeName,
    path: Annotated[
        str | None, typer.Argument(help="A path in the tree (default: the root).")
    ] = None,
    snapshot_id: SnapshotId = None,
    as_json: AsJson = False,
) -> None:
    """Show what a snapshot captured: the tree below PATH, or one node's value."""
    state.read_only()
    if path is not None:
        validate_path(path)
    loaded = load_snapshot(state.app, name, snapshot_id, under=path)
    tree, sid, st = loaded.tree, loaded.snapshot_id, loaded.state
    base = path or tree.root
    if path is not None and not is_under(path, tree.root):
        raise InvalidInputError(f"{path!r} is not under the tree root {tree.root!r}")
    if base not in st.nodes:
        raise InvalidInputError(f"{base!r} is not in snapshot {sid} of tree {name!r}")
    rd = redactor()
    nodes = [st.nodes[p] for p in st.nodes if is_under(p, base)]
    if as_json:
        emit_json({"tree": name, "snapshot_id": sid, "nodes": [_node_json(n, rd) for n in nodes]})
        return
    if len(nodes) == 1:
        _show_node(nodes[0], sid, rd)
        return
    console.print(
        f"[bold]{escape(name)}[/] snapshot {sid}: {len(nodes):,} nodes under {escape(base)}"
    )
    rich_tree = RichTree(f"[bold]{escape(base)}[/]")
    branches = {base: rich_tree}
    for node in nodes[1:]:
        parent = node.path.rsplit("/", 1)[0] or "/"
        label = escape(node.path.rsplit("/", 1)[1])
        if node.data:
            preview = rd.render(node.path, node.data).replace("\n", " ")
            if len(preview) > 60:
                preview = preview[:57] + "..."
            label = f"{label} = [dim]{escape(preview)}[/]"
        if node.ephemeral:
            label += " [yellow](ephemeral)[/]"
        branches[node.path] = branches.get(parent, rich_tree).add(label)
    console.print(rich_tree)


def _show_node(node: Znode, snapshot_id: int, rd: Redactor) -> None:
    stat = node.stat
    console.print(f"[bold]{escape(node.path)}[/]  (snapshot {snapshot_id})")
    if stat:
        mtime = utc_text(dt.datetime.fromtimestamp(stat.mtime / 1000, dt.UTC))
        console.print(
            f"version {stat.version}, {len(node.data)} bytes, modified {mtime}"
            + (", ephemeral" if node.ephemeral else "")
        )
    if node.acl is not None:
        console.print("acl: " + escape(", ".join(a.render() for a in node.acl)))
    console.print(rd.render(node.path, node.data), markup=False)


def export(
    name: TreeName,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write ('-' for stdout).")],
    snapshot_id: SnapshotId = None,
) -> None:
    """Export a snapshot as zkdrift JSON (base64 data; byte-exact, see docs/export-format.md)."""
    state.read_only()
    with export_snapshot(state.app, name, snapshot_id) as (info, pieces):
        write_export(str(output), pieces)
    if str(output) == "-":
        return
    console.print(
        f"exported snapshot {info.snapshot_id} of {name}: {info.nodes:,} nodes to {output}",
        markup=False,
    )
