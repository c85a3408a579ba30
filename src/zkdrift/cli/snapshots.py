"""``zkdrift snapshot``, ``snapshots``, ``show`` and ``export``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table
from rich.tree import Tree as RichTree

from zkdrift.cli import app
from zkdrift.cli._common import capture_progress, console, emit_json, state, write_export
from zkdrift.errors import InvalidInputError
from zkdrift.formats.zkjson import dump_export
from zkdrift.model import Znode
from zkdrift.paths import InvalidPathError, is_under, validate_path
from zkdrift.redact import Redactor
from zkdrift.snapshot import load_snapshot, take_snapshot
from zkdrift.store import snapshots as snapshot_store
from zkdrift.store import trees as tree_store


def _redactor() -> Redactor:
    return Redactor(state.app.settings.secret_globs)


@app.command("snapshot")
def snapshot(
    name: str = typer.Argument(..., help="Registered tree name."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Capture the live tree into the database as a new snapshot."""
    zk_app = state.app
    with zk_app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        previous = snapshot_store.list_snapshots(session, tree, limit=1)
    total = previous[0].node_count if previous else None
    with capture_progress(f"reading {name}", enabled=not as_json, total=total) as progress:
        result = take_snapshot(zk_app, name, progress=progress)
    duration = result.read_seconds + result.write_seconds
    if as_json:
        emit_json(
            {
                "snapshot_id": result.snapshot_id,
                "tree": name,
                "nodes": result.node_count,
                "bytes": result.total_bytes,
                "changed": result.changed,
                "added": result.added,
                "removed": result.removed,
                "modified": result.modified,
                "ephemeral": result.ephemeral,
                "duration_seconds": round(duration, 3),
                "read_seconds": round(result.read_seconds, 3),
                "write_seconds": round(result.write_seconds, 3),
            }
        )
        return
    console.print(
        f"snapshot [bold]{result.snapshot_id}[/] of [bold]{name}[/]: "
        f"{result.node_count:,} nodes, {result.changed:,} changed since the last snapshot "
        f"(+{result.added} -{result.removed} ~{result.modified}) in {duration:.2f}s"
    )


@app.command("snapshots")
def snapshots(
    name: str = typer.Argument(..., help="Registered tree name."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """List a tree's snapshots, newest first."""
    with state.app.db.session() as session:
        tree = tree_store.get_tree(session, name)
        snaps = snapshot_store.list_snapshots(session, tree, limit=limit)
        rows = [
            {
                "id": s.id,
                "taken_at": s.started_at.isoformat(),
                "nodes": s.node_count,
                "bytes": s.total_bytes,
                "added": s.added,
                "removed": s.removed,
                "modified": s.modified,
                "ephemeral": s.ephemeral_count,
                "seconds": round(s.read_seconds + s.write_seconds, 3),
            }
            for s in snaps
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(
            f"tree {name!r} has no snapshots yet; take one with 'zkdrift snapshot {name}'"
        )
        return
    table = Table("id", "taken at (UTC)", "nodes", "bytes", "+", "-", "~", "seconds")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["taken_at"])[:19],
            f"{r['nodes']:,}",
            f"{r['bytes']:,}",
            str(r["added"]),
            str(r["removed"]),
            str(r["modified"]),
            f"{r['seconds']:.2f}",
        )
    console.print(table)


def _node_json(node: Znode, redactor: Redactor) -> dict[str, object]:
    stat = node.stat
    return {
        "path": node.path,
        "value": redactor.render(node.path, node.data),
        "size": len(node.data),
        "sha256": node.data_digest,
        "version": stat.version if stat else None,
        "mtime": stat.mtime if stat else None,
        "ephemeral": node.ephemeral,
        "acl": [a.render() for a in node.acl] if node.acl is not None else None,
    }


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Registered tree name."),
    path: str | None = typer.Argument(None, help="A path in the tree (default: the root)."),
    snapshot_id: int | None = typer.Option(
        None, "--snapshot", help="Snapshot id (default: latest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Show what a snapshot captured: the tree below PATH, or one node's value."""
    if path is not None:
        try:
            validate_path(path)
        except InvalidPathError as exc:
            raise InvalidInputError(str(exc)) from exc
    loaded = load_snapshot(state.app, name, snapshot_id, under=path)
    tree, sid, st = loaded.tree, loaded.snapshot_id, loaded.state
    base = path or tree.root
    if path is not None and not is_under(path, tree.root):
        raise InvalidInputError(f"{path!r} is not under the tree root {tree.root!r}")
    if base not in st.nodes:
        raise InvalidInputError(f"{base!r} is not in snapshot {sid} of tree {name!r}")
    redactor = _redactor()
    nodes = [st.nodes[p] for p in st.nodes if is_under(p, base)]
    if as_json:
        emit_json(
            {"tree": name, "snapshot_id": sid, "nodes": [_node_json(n, redactor) for n in nodes]}
        )
        return
    if len(nodes) == 1:
        node = nodes[0]
        stat = node.stat
        console.print(f"[bold]{node.path}[/]  (snapshot {sid})")
        if stat:
            mtime = dt.datetime.fromtimestamp(stat.mtime / 1000, dt.UTC).isoformat(
                timespec="seconds"
            )
            console.print(
                f"version {stat.version}, {len(node.data)} bytes, modified {mtime}"
                + (", ephemeral" if node.ephemeral else "")
            )
        if node.acl is not None:
            console.print("acl: " + ", ".join(a.render() for a in node.acl))
        console.print(redactor.render(node.path, node.data), markup=False)
        return
    console.print(f"[bold]{name}[/] snapshot {sid}: {len(nodes):,} nodes under {base}")
    rich_tree = RichTree(f"[bold]{base}[/]")
    branches = {base: rich_tree}
    for node in nodes[1:]:
        parent = node.path.rsplit("/", 1)[0] or "/"
        label = node.path.rsplit("/", 1)[1]
        if node.data:
            preview = redactor.render(node.path, node.data).replace("\n", " ")
            if len(preview) > 60:
                preview = preview[:57] + "..."
            label = f"{label} = [dim]{escape(preview)}[/]"
        if node.ephemeral:
            label += " [yellow](ephemeral)[/]"
        branches[node.path] = branches.get(parent, rich_tree).add(label)
    console.print(rich_tree)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Registered tree name."),
    snapshot_id: int | None = typer.Option(
        None, "--snapshot", help="Snapshot id (default: latest)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="File to write ('-' for stdout)."),
) -> None:
    """Export a snapshot as zkdrift JSON (base64 data; byte-exact, see docs/export-format.md)."""
    loaded = load_snapshot(state.app, name, snapshot_id)
    st, sid = loaded.state, loaded.snapshot_id
    payload = dump_export(st, tree=name, snapshot_id=sid, taken_at=loaded.taken_at)
    write_export(str(output), payload)
    if str(output) == "-":
        return
    console.print(f"exported snapshot {sid} of {name}: {len(st):,} nodes to {output}")
