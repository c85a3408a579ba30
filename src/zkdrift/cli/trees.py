"""``zkdrift tree``: register and list managed trees."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from zkdrift.cli import app
from zkdrift.cli._common import console, emit_json, state
from zkdrift.snapshot import TreeSpec, add_tree
from zkdrift.store import trees as tree_store
from zkdrift.store.models import Tree

tree_app = typer.Typer(
    help="Register and list the ZooKeeper trees zkdrift manages.", no_args_is_help=True
)
app.add_typer(tree_app, name="tree")


def tree_json(tree: Tree) -> dict[str, Any]:
    return {
        "name": tree.name,
        "hosts": tree.hosts,
        "root": tree.root,
        "excludes": tree.excludes,
        "includes": tree.includes,
        "capture_acl": tree.capture_acl,
        "auth_env": tree.auth_env,
        "options": tree.options,
        "created_at": tree.created_at.isoformat(),
    }


@tree_app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name for the tree, e.g. 'payments-prod'."),
    hosts: str = typer.Option(
        ..., "--hosts", help="Connect string: host:port[,host:port][/chroot]."
    ),
    root: str = typer.Option(..., "--root", help="Absolute path of the subtree to manage."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Glob of paths to ignore (repeatable)."
    ),
    include: list[str] = typer.Option(
        [], "--include", help="Only manage paths matching (repeatable)."
    ),
    acl: bool = typer.Option(False, "--acl", help="Capture ACLs too (one extra request per node)."),
    auth_env: str | None = typer.Option(
        None, "--auth-env", help="Environment variable holding 'scheme:credential' for this tree."
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Verify the root exists first."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered tree as JSON."),
) -> None:
    """Register a ZooKeeper subtree under NAME."""
    spec = TreeSpec(
        name=name,
        hosts=hosts,
        root=root,
        excludes=tuple(exclude),
        includes=tuple(include),
        capture_acl=acl,
        auth_env=auth_env,
    )
    tree = add_tree(state.app, spec, check=check)
    if as_json:
        emit_json(tree_json(tree))
    else:
        console.print(f"registered tree [bold]{name}[/]: {hosts} {root}")


@tree_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """List registered trees."""
    with state.app.db.session() as session:
        trees = tree_store.list_trees(session)
        rows = [tree_json(t) for t in trees]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(
            "no trees registered yet; add one with 'zkdrift tree add NAME --hosts ... --root ...'"
        )
        return
    table = Table("name", "hosts", "root", "excludes", "acl")
    for row in rows:
        table.add_row(
            row["name"],
            row["hosts"],
            row["root"],
            ", ".join(row["excludes"]) or "-",
            "yes" if row["capture_acl"] else "no",
        )
    console.print(table)
