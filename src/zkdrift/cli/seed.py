"""``zkdrift seed``: load the example configuration tree into ZooKeeper."""

from __future__ import annotations

import typer

from zkdrift.cli import app
from zkdrift.cli._common import console, state
from zkdrift.examples import example_tree, seed
from zkdrift.zk import client as zk


@app.command("seed")
def seed_command(
    hosts: str = typer.Option("127.0.0.1:2181", "--hosts", help="ZooKeeper connect string."),
    root: str = typer.Option("/zkdrift-demo", "--root", help="Where to create the example tree."),
    overwrite: bool = typer.Option(False, help="Reset existing example nodes to their values."),
) -> None:
    """Create an example service-configuration tree (services x environments x keys)."""
    settings = state.app.settings
    target = zk.ZkTarget(
        hosts=hosts,
        auth=settings.zk_auth.get_secret_value() if settings.zk_auth else None,
        connect_timeout=settings.zk_connect_timeout,
    )
    nodes = example_tree(root)
    with zk.session(target) as client:
        written = seed(client, nodes, overwrite=overwrite)
    console.print(f"seeded {root} on {hosts}: {written} of {len(nodes)} nodes written")
