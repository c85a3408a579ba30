"""``zkdrift tree``: register, list, show, change and remove managed trees."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift import trees as trees_lib
from zkdrift.cli.common import AsJson, TreeName, console, emit_json, state
from zkdrift.errors import InvalidInputError

tree_app = typer.Typer(
    help="Register and list the ZooKeeper trees zkdrift manages.", no_args_is_help=True
)

Excludes = Annotated[
    list[str], typer.Option("--exclude", help="Glob of paths to ignore (repeatable).")
]


@tree_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name for the tree, e.g. 'payments-prod'.")],
    hosts: Annotated[
        str, typer.Option("--hosts", help="Connect string: host:port\\[,host:port]\\[/chroot].")
    ],
    root: Annotated[str, typer.Option("--root", help="Absolute path of the subtree to manage.")],
    exclude: Excludes = [],  # noqa: B006 - typer reads the default, never mutates it
    include: Annotated[
        list[str], typer.Option("--include", help="Only manage paths matching (repeatable).")
    ] = [],  # noqa: B006
    acl: Annotated[
        bool, typer.Option("--acl", help="Capture ACLs too (one extra request per node).")
    ] = False,
    auth_env: Annotated[
        str | None,
        typer.Option(
            "--auth-env", help="Environment variable holding 'scheme:credential' for this tree."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Verify the root exists first.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Register a ZooKeeper subtree under NAME."""
    spec = trees_lib.TreeSpec(
        name=name,
        hosts=hosts,
        root=root,
        excludes=tuple(exclude),
        includes=tuple(include),
        capture_acl=acl,
        auth_env=auth_env,
    )
    info = trees_lib.add_tree(state.app, spec, check=check)
    if as_json:
        emit_json(info.as_json())
    else:
        console.print(f"registered tree [bold]{escape(name)}[/]: {escape(hosts)} {escape(root)}")


@tree_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """List registered trees."""
    infos = trees_lib.list_trees(state.app)
    if as_json:
        emit_json([i.as_json() for i in infos])
        return
    if not infos:
        console.print(
            "no trees registered yet; add one with 'zkdrift tree add NAME --hosts ... --root ...'"
        )
        return
    table = Table("name", "hosts", "root", "excludes", "acl")
    for info in infos:
        table.add_row(
            escape(info.name),
            escape(info.hosts),
            escape(info.root),
            escape(", ".join(info.excludes)) or "-",
            "yes" if info.capture_acl else "no",
        )
    console.print(table)


@tree_app.command("show")
def show_tree(name: TreeName, as_json: AsJson = False) -> None:
    """Show one tree's registration, policy and schedule."""
    row = trees_lib.get_tree(state.app, name).as_json()
    if as_json:
        emit_json(row)
        return
    for key, value in row.items():
        console.print(f"[bold]{key}[/]: {escape(str(value))}")


@tree_app.command("set")
def set_policy(
    name: TreeName,
    hosts: Annotated[str | None, typer.Option("--hosts", help="New connect string.")] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Schedule the pipeline with a cron line.")
    ] = None,
    interval: Annotated[
        int | None, typer.Option("--interval", help="Schedule the pipeline every N seconds.")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA timezone of the cron line.")
    ] = None,
    no_schedule: Annotated[
        bool, typer.Option("--no-schedule", help="Remove the schedule.")
    ] = False,
    reconcile: Annotated[
        str | None,
        typer.Option(
            "--reconcile",
            help="What the pipeline does with drift: 'plan' (a dry run) or 'apply'.",
        ),
    ] = None,
    protect: Annotated[
        list[str], typer.Option("--protect", help="Glob apply must never touch (repeatable).")
    ] = [],  # noqa: B006
    max_delete_fraction: Annotated[
        float | None,
        typer.Option("--max-delete-fraction", help="Refuse larger prunes without --force."),
    ] = None,
    max_op_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-op-bytes", help="Largest single write (servers with a larger jute.maxbuffer)."
        ),
    ] = None,
    exclude: Annotated[
        list[str], typer.Option("--exclude", help="Replace the exclude globs (repeatable).")
    ] = [],  # noqa: B006
    as_json: AsJson = False,
) -> None:
    """Change a tree's connection, schedule and reconcile policy."""
    if cron is not None and interval is not None:
        raise InvalidInputError("give either --cron or --interval, not both")
    if no_schedule and (cron is not None or interval is not None):
        raise InvalidInputError("--no-schedule removes the schedule: drop --cron/--interval")
    changes: dict[str, Any] = {}
    if no_schedule:
        changes["schedule"] = None
    elif cron is not None:
        changes["schedule"] = {"cron": cron, "timezone": timezone}
    elif interval is not None:
        changes["schedule"] = {"interval": interval, "timezone": timezone}
    elif timezone is not None:
        raise InvalidInputError("--timezone goes with --cron or --interval")
    if reconcile is not None:
        changes["reconcile"] = reconcile
    if protect:
        changes["protected"] = list(protect)
    if max_delete_fraction is not None:
        changes["max_delete_fraction"] = max_delete_fraction
    if max_op_bytes is not None:
        changes["max_op_bytes"] = max_op_bytes
    info = trees_lib.update_tree(
        state.app, name, hosts=hosts, excludes=list(exclude) or None, **changes
    )
    if as_json:
        emit_json(info.as_json())
    else:
        console.print(
            f"updated tree [bold]{escape(name)}[/]: "
            f"{escape(str(info.policy.model_dump(mode='json', exclude_defaults=True)))}"
        )


@tree_app.command("remove")
def remove(
    name: TreeName,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete the tree and all its history.")
    ] = False,
) -> None:
    """Unregister a tree and delete its snapshots, desired state and audit from the database."""
    if not yes:
        raise InvalidInputError(
            f"removing {name!r} deletes its whole history from the database; add --yes to confirm"
        )
    trees_lib.remove_tree(state.app, name)
    console.print(f"removed tree [bold]{escape(name)}[/] (ZooKeeper was not touched)")
