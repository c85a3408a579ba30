"""``zkdrift seed``: load the example configuration tree into ZooKeeper."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from zkdrift import reconcile
from zkdrift import trees as trees_lib
from zkdrift.cli.common import console, state
from zkdrift.devtools.examples import example_tree, seed
from zkdrift.zk import client as zk


def seed_command(
    hosts: Annotated[
        str, typer.Option("--hosts", help="ZooKeeper connect string.")
    ] = "127.0.0.1:2181",
    root: Annotated[
        str, typer.Option("--root", help="Where to create the example tree.")
    ] = "/zkdrift-demo",
    overwrite: Annotated[
        bool, typer.Option(help="Reset existing example nodes to their values.")
    ] = False,
    register: Annotated[
        str | None,
        typer.Option(
            "--register",
            help="Also register the tree under this name and adopt it as the desired state "
            "(skipped when a tree of that name exists).",
        ),
    ] = None,
) -> None:
    """Create an example service-configuration tree (services x environments x keys)."""
    app = state.app
    nodes = example_tree(root)
    with zk.session(app.target_for(hosts)) as client:
        written = seed(client, nodes, overwrite=overwrite)
    console.print(
        f"seeded {root} on {hosts}: {written} of {len(nodes)} nodes written", markup=False
    )
    if register is None:
        return
    if register in trees_lib.tree_names(app):
        console.print(f"tree [bold]{escape(register)}[/] is already registered; left as it is")
        return
    trees_lib.add_tree(app, trees_lib.TreeSpec(name=register, hosts=hosts, root=root), check=False)
    result = reconcile.adopt(app, register, message="example tree as seeded", source="seed")
    entries = result.revision.entries if result.revision else 0
    console.print(
        f"registered tree [bold]{escape(register)}[/] and adopted its {entries:,} nodes "
        f"as desired-state revision {result.applied_revision}"
    )
