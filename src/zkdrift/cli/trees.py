"""``zkdrift tree``: register, list, show, change and remove managed trees."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from zkdrift import trees as trees_lib
from zkdrift.cli.common import AsJson, TreeName, console, emit_json, state
from zkdrift.errors import InvalidInputError
from zkdrift.policy import DesiredSource, TreePolicy
from zkdrift.trees import check_auth_env
from zkdrift.vocabulary import utc_text

tree_app = typer.Typer(
    help="Register and list the ZooKeeper trees zkdrift manages.", no_args_is_help=True
)

Excludes = Annotated[
    list[str], typer.Option("--exclude", help="Glob of paths to ignore (repeatable).")
]
DefaultAcl = Annotated[
    list[str],
    typer.Option(
        "--default-acl",
        help="ACL entry scheme:id:perms for the nodes zkdrift creates (repeatable);"
        " without it, they inherit their parent's ACL.",
    ),
]
Tls = Annotated[
    bool | None, typer.Option("--tls/--no-tls", help="Connect over TLS (or stop doing so).")
]
TlsCa = Annotated[str | None, typer.Option("--tls-ca", help="CA bundle (PEM) of the servers.")]
TlsCert = Annotated[str | None, typer.Option("--tls-cert", help="Client certificate (PEM).")]
TlsKey = Annotated[str | None, typer.Option("--tls-key", help="Client private key (PEM).")]
TlsKeyPasswordEnv = Annotated[
    str | None,
    typer.Option("--tls-key-password-env", help="Environment variable holding the key's password."),
]
TlsNoVerify = Annotated[
    bool,
    typer.Option("--tls-no-verify", help="Do not verify the server's certificate (tests only)."),
]


def _tls(
    tls: bool | None,
    ca: str | None,
    cert: str | None,
    key: str | None,
    key_password_env: str | None,
    no_verify: bool,
) -> dict[str, Any] | None:
    """The TLS settings the options ask for; None when they say nothing about TLS."""
    files = {"ca": ca, "cert": cert, "key": key, "key_password_env": key_password_env}
    given = {k: v for k, v in files.items() if v is not None}
    if tls is False:
        if given or no_verify:
            raise InvalidInputError("--no-tls turns TLS off: drop the other --tls-* options")
        return None
    if tls is None and not given and not no_verify:
        return None
    if key_password_env is not None:
        check_auth_env(key_password_env)
    return {**given, "verify": not no_verify}


@tree_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short name for the tree, e.g. 'payments-prod'.")],
    hosts: Annotated[
        str, typer.Option("--hosts", help="Connect string: host:port[,host:port][/chroot].")
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
    default_acl: DefaultAcl = [],  # noqa: B006
    tls: Tls = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_key_password_env: TlsKeyPasswordEnv = None,
    tls_no_verify: TlsNoVerify = False,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Verify the root exists first.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Register a ZooKeeper subtree under NAME."""
    tls_settings = _tls(tls, tls_ca, tls_cert, tls_key, tls_key_password_env, tls_no_verify)
    policy = TreePolicy().changed(name, default_acl=list(default_acl) or None, tls=tls_settings)
    spec = trees_lib.TreeSpec(
        name=name,
        hosts=hosts,
        root=root,
        excludes=tuple(exclude),
        includes=tuple(include),
        capture_acl=acl,
        auth_env=auth_env,
        policy=policy,
    )
    info = trees_lib.add_tree(state.app, spec, check=check)
    if as_json:
        emit_json(info.as_json())
    else:
        console.print(f"registered tree [bold]{escape(name)}[/]: {escape(hosts)} {escape(root)}")


@tree_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """List registered trees."""
    state.read_only()
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
    state.read_only()
    info = trees_lib.get_tree(state.app, name)
    row = info.as_json()
    if as_json:
        emit_json(row)
        return
    row["created_at"] = utc_text(info.created_at)
    for key, value in row.items():
        console.print(f"[bold]{key}[/]: {escape(str(value))}")


@tree_app.command("set")
def set_policy(
    name: TreeName,
    hosts: Annotated[str | None, typer.Option("--hosts", help="New connect string.")] = None,
    auth_env: Annotated[
        str | None,
        typer.Option(
            "--auth-env", help="Environment variable holding 'scheme:credential' for this tree."
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Connect without credentials from now on.")
    ] = False,
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
    reconcile_on_drift: Annotated[
        bool | None,
        typer.Option(
            "--reconcile-on-drift/--no-reconcile-on-drift",
            help="Run the reconcile deployment when the watcher sees the tree drift"
            " (a dry run unless --reconcile apply).",
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
    default_acl: DefaultAcl = [],  # noqa: B006
    inherit_acl: Annotated[
        bool,
        typer.Option("--inherit-acl", help="Drop the default ACL: created nodes inherit again."),
    ] = False,
    allow_world_readable_secrets: Annotated[
        bool | None,
        typer.Option(
            "--allow-world-readable-secrets/--no-allow-world-readable-secrets",
            help="Let applies create secret paths anyone may read (off by default).",
        ),
    ] = None,
    tls: Tls = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    tls_key_password_env: TlsKeyPasswordEnv = None,
    tls_no_verify: TlsNoVerify = False,
    desired_source: Annotated[
        str | None,
        typer.Option(
            "--desired-source",
            metavar="REPOSITORY//PATH?ref=REF",
            help="Take the desired state from Git: a repository (URL, user@host:path or"
            " absolute path), '//' and the path of a directory, YAML or JSON file in it,"
            " then '?ref=' and a branch or tag. 'zkdrift desired sync' fetches it.",
        ),
    ] = None,
    no_desired_source: Annotated[
        bool,
        typer.Option(
            "--no-desired-source", help="Stop following Git: desired state is edited by hand."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Change a tree's connection, schedule, reconcile policy, ACL policy, TLS and
    desired source."""
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
    if reconcile_on_drift is not None:
        changes["reconcile_on_drift"] = reconcile_on_drift
    if protect:
        changes["protected"] = list(protect)
    if max_delete_fraction is not None:
        changes["max_delete_fraction"] = max_delete_fraction
    if max_op_bytes is not None:
        changes["max_op_bytes"] = max_op_bytes
    if default_acl and inherit_acl:
        raise InvalidInputError("give either --default-acl or --inherit-acl, not both")
    if default_acl:
        changes["default_acl"] = list(default_acl)
    elif inherit_acl:
        changes["default_acl"] = None
    if allow_world_readable_secrets is not None:
        changes["allow_world_readable_secrets"] = allow_world_readable_secrets
    tls_settings = _tls(tls, tls_ca, tls_cert, tls_key, tls_key_password_env, tls_no_verify)
    if tls_settings is not None:
        current = trees_lib.get_tree(state.app, name).policy.tls
        base = {} if current is None else current.model_dump(exclude_none=True)
        changes["tls"] = {**base, **tls_settings}
    elif tls is False:
        changes["tls"] = None
    if desired_source is not None and no_desired_source:
        raise InvalidInputError("give either --desired-source or --no-desired-source, not both")
    if desired_source is not None:
        changes["desired_source"] = DesiredSource.parse(desired_source).model_dump()
    elif no_desired_source:
        changes["desired_source"] = None
    if auth_env is not None and no_auth:
        raise InvalidInputError("give either --auth-env or --no-auth, not both")
    info = trees_lib.update_tree(
        state.app,
        name,
        hosts=hosts,
        excludes=list(exclude) or None,
        auth_env=auth_env,
        no_auth=no_auth,
        **changes,
    )
    if as_json:
        emit_json(info.as_json())
    else:
        console.print(f"updated tree [bold]{escape(name)}[/]: {escape(str(info.policy.shown()))}")


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
