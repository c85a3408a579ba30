"""``zkdrift seed``: load the example configuration tree into ZooKeeper."""

from __future__ import annotations

import typer

from zkdrift.cli import app
from zkdrift.cli._common import console, state
from zkdrift.examples import example_tree, seed
from zkdrift.snapshot import TreeSpec, add_tree
from zkdrift.store import trees as tree_store
from zkdrift.zk import client as zk


@app.command("seed")
def seed_command(
    hosts: str = typer.Option("127.0.0.1:2181", "--hosts", help="ZooKeeper connect string."),
    root: str = typer.Option("/zkdrift-demo", "--root", help="Where to create the example tree."),
    overwrite: bool = typer.Option(False, help="Reset existing example nodes to their values."),
    register: str | None = typer.Option(
        None,
        "--register",
        help="Also register the tree under this name and adopt it as the desired state "
        "(skipped when a tree of that name exists).",
    ),
) -> None:
    """Create an example service-configuration tree (services x environments x keys)."""
    zk_app = state.app
    settings = zk_app.settings
    target = zk.ZkTarget(
        hosts=hosts,
        auth=settings.zk_auth.get_secret_value() if settings.zk_auth else None,
        connect_timeout=settings.zk_connect_timeout,
    )
    nodes = example_tree(root)
    with zk.session(target) as client:
        written = seed(client, nodes, overwrite=overwrite)
    console.print(f"seeded {root} on {hosts}: {written} of {len(nodes)} nodes written")
    if register is None:
        return
    with zk_app.db.session() as session:
        exists = register in tree_store.tree_names(session)
    if exists:
        console.print(f"tree [bold]{register}[/] is already registered; left as it is")
        return
    from zkdrift.desired import adopt

    add_tree(zk_app, TreeSpec(name=register, hosts=hosts, root=root), check=False)
    result = adopt(zk_app, register, message="example tree as seeded", source="seed")
    entries = result.revision.entries if result.revision else 0
    console.print(
        f"registered tree [bold]{register}[/] and adopted its {entries:,} nodes "
        f"as desired-state revision {result.applied_revision}"
    )
