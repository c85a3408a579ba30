"""Promotion between trees on two ZooKeeper servers, comparing trees, and one-command
restore: the ``zkdrift`` command against real ZooKeeper, exit codes and audit rows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import update

from tests.support.cli import run_cli
from tests.support.git import Repo
from tests.support.zk import connected, create_tree, live_values
from zkdrift import desired
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.policy import DesiredSource, TreePolicy
from zkdrift.reconcile import adopt, audit_log, restore
from zkdrift.snapshot import take_snapshot
from zkdrift.store.models import Snapshot
from zkdrift.trees import TreeSpec, add_tree, update_tree

STAGING_SECRET = b"staging-secret-pw"
PROD_SECRET = b"prod-secret-pw"
STAGING = {
    "/stg": b"",
    "/stg/db/host": b"db.staging",
    "/stg/db/password": STAGING_SECRET,
    "/stg/flags/beta": b"on",
    "/stg/kafka/brokers": b"kafka-staging:9092",
    "/stg/cache/tmp": b"scratch",
    "/stg/new": b"fresh",
}
PROD = {
    "/prod": b"",
    "/prod/db/host": b"db.prod",
    "/prod/db/password": PROD_SECRET,
    "/prod/flags/beta": b"off",
    "/prod/kafka/brokers": b"kafka-prod:9092",
    "/prod/old": b"to be dropped",
    **{f"/prod/filler/{i}": b"same" for i in range(12)},
}


def cli(*args: str, env: dict[str, str], code: int = 0) -> str:
    result = run_cli(*args, env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr


@pytest.fixture
def prod_zk(killable_zk_server: ZooKeeperServer) -> Iterator[KazooClient]:
    """A client of the second ZooKeeper server (production in these tests)."""
    with connected(killable_zk_server.connect_string) as client:
        yield client


def two_clusters(
    app: App, zk: KazooClient, zk_chroot: str, prod_zk: KazooClient, prod_hosts: str
) -> None:
    create_tree(zk, {**STAGING, **{f"/stg/filler/{i}": b"same" for i in range(12)}})
    create_tree(prod_zk, PROD)
    add_tree(app, TreeSpec(name="staging", hosts=zk_chroot, root="/stg"))
    policy = TreePolicy(protected=("/prod/kafka/**",))
    add_tree(
        app,
        TreeSpec(
            name="prod", hosts=prod_hosts, root="/prod", excludes=("**/cache/**",), policy=policy
        ),
    )
    adopt(app, "staging", actor="test")
    adopt(app, "prod", actor="test")


def test_promote_between_two_servers_plans_then_applies_under_prod_rules_with_an_audit(
    app: App,
    zk: KazooClient,
    zk_chroot: str,
    prod_zk: KazooClient,
    killable_zk_server: ZooKeeperServer,
    cli_env: dict[str, str],
) -> None:
    two_clusters(app, zk, zk_chroot, prod_zk, killable_zk_server.connect_string)

    before = cli("diff", "staging", "--against-tree", "prod", env=cli_env, code=2)
    planned = cli("promote", "staging", "prod", env=cli_env)

    assert "--- prod (live, snapshot" in before and "/stg mapped onto /prod" in before
    assert "/prod/new  (only in staging)" in before
    assert "/prod/old  (only in prod)" in before
    assert "/prod/db/host  (changed)" in before
    assert "/prod/cache/tmp" not in before  # prod does not manage it
    assert "/prod/db/password: secret, kept as prod has it" in planned
    assert "/prod/kafka/brokers: protected in prod, kept as it is" in planned
    assert "/prod/cache/tmp: not managed by prod, left out" in planned
    assert '~ /prod/db/host: "db.prod" -> "db.staging"' in planned
    assert '+ /prod/new = "fresh"' in planned
    assert "zkdrift apply prod --plan" in planned
    assert live_values(prod_zk, "/prod")["/prod/db/host"] == b"db.prod"  # only planned
    rev = desired.desired_log(app, "prod")[0]
    assert rev.source == "promote" and rev.message.startswith("promote from tree staging, snapshot")

    applied = cli("promote", "staging", "prod", "--apply", "--prune", env=cli_env)

    assert "applied (apply" in applied
    live = live_values(prod_zk, "/prod")
    assert live["/prod/db/host"] == b"db.staging"
    assert live["/prod/flags/beta"] == b"on"
    assert live["/prod/new"] == b"fresh"
    assert "/prod/old" not in live
    assert live["/prod/db/password"] == PROD_SECRET  # secrets are not promoted unless asked
    assert live["/prod/kafka/brokers"] == b"kafka-prod:9092"
    assert "/prod/cache/tmp" not in live
    entry = audit_log(app, "prod", include_dry_runs=False)[0]
    assert (entry.direction, entry.outcome) == ("promote", "applied")
    assert entry.reason.startswith("promote from tree staging, snapshot ")
    assert live_values(zk, "/stg")["/stg/db/host"] == b"db.staging"  # the source is untouched
    for text in (before, planned, applied):
        assert STAGING_SECRET.decode() not in text and PROD_SECRET.decode() not in text

    after = cli("diff", "staging", "--against-tree", "prod", env=cli_env, code=2)
    assert "/prod/db/password  (changed)" in after and "<redacted hmac:" in after
    assert "/prod/kafka/brokers  (changed)" in after
    assert "/prod/new" not in after and "/prod/db/host" not in after
    # Asked for, the secret moves too; --paths takes only what it names (source paths),
    # and --from desired takes staging's revision.
    zk.set("/stg/flags/beta", b"off-again")
    adopt(app, "staging", actor="test")
    out = cli(
        "promote", "staging", "prod", "--from", "desired", "--paths", "/stg/db/**",
        "--paths", "/stg/flags", "--with-secrets", "--apply", env=cli_env,
    )  # fmt: skip
    assert "applied" in out
    live = live_values(prod_zk, "/prod")
    assert (live["/prod/db/password"], live["/prod/flags/beta"]) == (STAGING_SECRET, b"off-again")
    entry = audit_log(app, "prod", include_dry_runs=False)[0]
    assert entry.reason.startswith("promote from tree staging, desired revision 2")


def test_diff_against_tree_exits_0_when_the_trees_match_and_keeps_diffs_exit_codes(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/a": b"", "/a/x": b"1", "/b": b"", "/b/x": b"1"})
    add_tree(app, TreeSpec(name="a", hosts=zk_chroot, root="/a"))
    add_tree(app, TreeSpec(name="b", hosts=zk_chroot, root="/b"))

    same = cli("diff", "a", "--against-tree", "b", env=cli_env)
    desired_side = run_cli("diff", "a", "--against-tree", "b", "--compare", "desired", env=cli_env)
    zk.set("/b/x", b"2")
    differs = json.loads(cli("diff", "a", "--against-tree", "b", "--json", env=cli_env, code=2))
    unknown = run_cli("diff", "a", "--against-tree", "nope", env=cli_env)

    assert "no differences" in same
    assert desired_side.exit_code == 1 and "no desired state" in desired_side.stderr
    assert differs["has_differences"] is True
    assert [(i["path"], i["source_path"], i["label"]) for i in differs["items"]] == [
        ("/b/x", "/a/x", "changed")
    ]
    assert (differs["items"][0]["source"]["value"], differs["items"][0]["target"]["value"]) == (
        "1",
        "2",
    )
    assert unknown.exit_code == 1 and "unknown tree 'nope'" in unknown.stderr


def _at(app: App, snapshot_id: int, when: dt.datetime) -> None:
    with app.db.session() as session:
        session.execute(update(Snapshot).where(Snapshot.id == snapshot_id).values(started_at=when))


def test_restore_to_a_time_between_two_snapshots_picks_the_earlier_one_and_applies_it(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/app/a": b"1", "/app/b": b"2", "/app/tmp/x": b"scratch"})
    create_tree(zk, {f"/app/filler/{i}": b"same" for i in range(12)})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app", excludes=("**/tmp/**",)))
    adopt(app, "app", actor="test")
    nine = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a", b"10")
    zk.delete("/app/b")
    zk.create("/app/c", b"3")
    ten = take_snapshot(app, "app").snapshot_id
    _at(app, nine, dt.datetime(2026, 3, 1, 9, 0))
    _at(app, ten, dt.datetime(2026, 3, 1, 10, 0))
    zk.create("/app/session", b"owner", ephemeral=True)
    zk.set("/app/tmp/x", b"changed later")
    revisions = len(desired.desired_log(app, "app"))

    preview = cli("restore", "app", "--at", "2026-03-01T09:30:00", env=cli_env)

    note = (
        f"snapshot {nine}, taken 2026-03-01 09:00:00 UTC: 2026-03-01 09:30:00 UTC falls between"
        f" snapshot {nine} and snapshot {ten}"
    )
    assert note in preview and "so the earlier one, in force then, is restored" in preview
    assert '~ /app/a: "10" -> "1"' in preview
    assert '+ /app/b = "2"' in preview and "- /app/c" in preview
    assert "nothing was written; to restore, run again with --yes" in preview
    assert len(desired.desired_log(app, "app")) == revisions
    assert zk.get("/app/a")[0] == b"10"

    done = cli("restore", "app", "--at", "2026-03-01T09:30:00+00:00", "--yes", env=cli_env)

    assert note in done and "applied (apply" in done
    live = live_values(zk, "/app")
    assert (live["/app/a"], live["/app/b"]) == (b"1", b"2")
    assert "/app/c" not in live
    assert live["/app/session"] == b"owner"  # ephemeral: untouched
    assert live["/app/tmp/x"] == b"changed later"  # excluded: untouched
    rev = desired.desired_log(app, "app")[0]
    assert rev.source == "restore" and note in rev.message
    entry = audit_log(app, "app", include_dry_runs=False)[0]
    assert (entry.direction, entry.outcome) == ("restore", "applied")
    assert entry.reason.startswith(f"restore to snapshot {nine}")
    assert entry.desired_revision_id is not None
    cli("diff", "app", env=cli_env)  # live equals the restored desired state

    early = run_cli("restore", "app", "--at", "2026-03-01T08:00:00", env=cli_env)
    missing = run_cli("restore", "app", "--snapshot", "999999", env=cli_env)
    both = run_cli("restore", "app", "--snapshot", str(nine), "--at", "1h", env=cli_env)
    for result in (early, missing, both):
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert f"its first is snapshot {nine}" in early.stderr


def test_restore_of_some_paths_deletes_nothing_outside_them(
    app: App, zk: KazooClient, zk_chroot: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    create_tree(zk, {"/app/a/x": b"1", "/app/b/y": b"2"})
    create_tree(zk, {f"/app/filler/{i}": b"same" for i in range(12)})
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"))
    adopt(app, "app", actor="test")
    first = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a/x", b"changed")
    zk.create("/app/a/new", b"n")
    zk.create("/app/b/new", b"n")
    adopt(app, "app", actor="test")

    result = restore(app, "app", snapshot_id=first, paths=["/app/a"], yes=True, actor="test")

    assert result.apply is not None and result.apply.ok, result.apply
    live = live_values(zk, "/app")
    assert live["/app/a/x"] == b"1" and "/app/a/new" not in live
    assert live["/app/b/new"] == b"n"
    # A Git-sourced tree refuses a restore without --override, and records one with it.
    repo = Repo(tmp_path / "git")
    repo.commit("base", {"a/x": "1"})
    update_tree(app, "app", desired_source=DesiredSource.parse(f"{repo.url}?ref=main").model_dump())
    refused = run_cli("restore", "app", "--snapshot", str(first), "--yes", env=cli_env)
    assert refused.exit_code == 1 and "the source of truth is the repository" in refused.stderr
    cli("restore", "app", "--snapshot", str(first), "--yes", "--override", env=cli_env)
    assert desired.desired_log(app, "app")[0].override is True
