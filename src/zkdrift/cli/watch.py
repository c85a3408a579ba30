"""``zkdrift watch``: follow trees as they change, drift recorded within a second."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from zkdrift.cli.common import state


def watch_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Trees to watch (default: every registered tree).", show_default=False),
    ] = None,
) -> None:
    """Watch trees for drift as it happens, until stopped (Ctrl-C or SIGTERM).

    One ZooKeeper session per tree, with a persistent recursive watch on its
    root (ZooKeeper 3.6+; older servers are read in full now and then,
    labelled 'polling' in 'zkdrift status'). Every change is recorded as it
    is seen, and the tree's drift with it. With a Prefect API configured, each
    change and each drift state change is also a Prefect event.
    """
    from zkdrift.flows.events import PrefectEvents, configured
    from zkdrift.watch import Watcher

    logging.getLogger("zkdrift").setLevel(logging.INFO)
    watcher = Watcher(state.app, list(names or []), sink=PrefectEvents() if configured() else None)
    watcher.run()
