"""Plan, apply and adopt against a real ZooKeeper, with the store on SQLite and MariaDB."""

from __future__ import annotations

import json
import pickle

from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.cli import run_cli
from tests.support.data import DESIRED, LIVE, setup_tree
from tests.support.zk import live_values
from zkdrift.app import App
from zkdrift.model import OpKind
from zkdrift.reconcile import (
    adopt,
    apply_tree,
    audit_detail,
    audit_log,
    plan_tree,
)
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.models import DesiredRevision, PlanOp, Tree


def test_plan_lists_creates_sets_with_their_planned_versions_and_persists_them(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    zk.set("/app/db/url", b"jdbc:old")  # version 1

    result = plan_tree(app, "app")

    kinds = {(op.kind, op.path) for op in result.ops}
    assert kinds == {
        (OpKind.CREATE, "/app/feature"),
        (OpKind.CREATE, "/app/feature/flag"),
        (OpKind.SET, "/app/db/url"),
        (OpKind.SET, "/app/db/password"),
        (OpKind.SET, "/app/cache/ttl"),
    }
    url_op = next(op for op in result.ops if op.path == "/app/db/url")
    assert url_op.expected_version == 1
    assert result.op_count == 5 and not result.empty and not result.refusals
    assert any("--prune" in w and "/app/legacy" in w for w in result.warnings)
    with app.db.session() as session:
        stored = session.scalars(select(PlanOp).where(PlanOp.plan_id == result.plan_id)).all()
    assert {(r.kind, r.path, r.expected_version) for r in stored} >= {("set", "/app/db/url", 1)}
    assert pickle.loads(pickle.dumps(result)) == result


def test_apply_without_yes_is_a_dry_run_that_writes_nothing(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)

    result = apply_tree(app, "app")

    assert result.outcome == "dry-run"
    assert result.ops_applied == 0 and result.ops_total == 5
    assert live_values(zk) == LIVE


def test_apply_makes_live_equal_desired_and_a_second_apply_changes_nothing(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)

    first = apply_tree(app, "app", yes=True, reason="rollout", actor="alice")
    second = apply_tree(app, "app", yes=True, actor="alice")

    assert first.outcome == "applied" and first.ops_applied == 5
    expected = dict(DESIRED, **{"/app/legacy": b"remove me"})  # no prune: extras stay
    assert live_values(zk) == expected
    assert second.outcome == "no-op" and second.ops_applied == 0
    assert pickle.loads(pickle.dumps(first)) == first
    with app.db.session() as session:
        tree = session.scalar(select(Tree).where(Tree.name == "app"))
        assert tree is not None
        latest = desired_store.latest_revision(session, tree)
        assert latest is not None and tree.applied_revision_id == latest.id


def test_audit_records_actor_reason_plan_and_each_op_with_digests(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)

    result = apply_tree(app, "app", yes=True, reason="rollout 42", actor="alice")

    entries = audit_log(app, "app")
    assert [(e.id, e.actor, e.reason, e.outcome) for e in entries] == [
        (result.apply_id, "alice", "rollout 42", "applied")
    ]
    entry, ops = audit_detail(app, "app", result.apply_id)
    assert entry.plan_id is not None and entry.lock_identifier
    assert json.loads(entry.lock_identifier)["actor"] == "alice"
    by_path = {op.path: op for op in ops}
    url = by_path["/app/db/url"]
    assert (url.kind, url.outcome) == ("set", "applied")
    from zkdrift.model import digest

    assert url.before_digest == digest(b"jdbc:old")
    assert url.after_digest == digest(b"jdbc:new")
    assert len(ops) == 5


def test_deletes_happen_only_with_prune(app: App, zk: KazooClient, zk_chroot: str) -> None:
    live = {**LIVE, **{f"/app/cache/k{i}": b"x" for i in range(20)}}
    desired = {**DESIRED, **{f"/app/cache/k{i}": b"x" for i in range(20)}}
    setup_tree(app, zk, zk_chroot, live=live, desired=desired)

    kept = apply_tree(app, "app", yes=True)
    assert zk.exists("/app/legacy") is not None
    pruned = apply_tree(app, "app", yes=True, prune=True)

    assert "except for paths desired lacks" in kept.message
    assert pruned.outcome == "applied" and pruned.ops_applied == 1
    assert pruned.message.endswith("live equals desired")
    assert live_values(zk) == desired


def test_an_external_write_between_plan_and_apply_is_refused_and_survives(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    planned = plan_tree(app, "app")
    zk.set("/app/db/url", b"jdbc:hotfix")

    result = apply_tree(app, "app", plan_id=planned.plan_id, yes=True)

    assert result.outcome == "refused"
    assert result.moved_paths == ("/app/db/url",)
    assert "/app/db/url" in result.message
    assert zk.get("/app/db/url")[0] == b"jdbc:hotfix"
    assert zk.get("/app/cache/ttl")[0] == b"60"  # nothing of the plan was written


def test_replan_applies_a_fresh_plan_made_under_the_lock(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    planned = plan_tree(app, "app")
    zk.set("/app/db/url", b"jdbc:hotfix")

    result = apply_tree(app, "app", plan_id=planned.plan_id, yes=True, replan=True)

    assert result.outcome == "applied"
    assert result.plan is not None and result.plan.plan_id != planned.plan_id
    assert live_values(zk)["/app/db/url"] == b"jdbc:new"


def test_a_stored_plan_applies_when_nothing_moved_and_only_once(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    planned = plan_tree(app, "app")

    first = apply_tree(app, "app", plan_id=planned.plan_id, yes=True)
    again = apply_tree(app, "app", plan_id=planned.plan_id, yes=True)

    assert first.outcome == "applied" and first.ops_applied == planned.op_count
    assert again.outcome == "refused" and "already applied" in again.message


def test_deleting_more_than_the_allowed_share_is_refused_without_force(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot, desired={"/app": b"", "/app/db": b"", "/app/db/url": b"x"})

    refused = apply_tree(app, "app", yes=True, prune=True)
    forced = apply_tree(app, "app", yes=True, prune=True, force=True)

    assert refused.outcome == "refused"
    assert any("more than the allowed" in r for r in refused.refusals)
    assert forced.outcome == "applied"
    assert live_values(zk) == {"/app": b"", "/app/db": b"", "/app/db/url": b"x"}


def test_protected_paths_are_never_written(app: App, zk: KazooClient, zk_chroot: str) -> None:
    setup_tree(app, zk, zk_chroot, protected=["/app/db"])

    result = apply_tree(app, "app", yes=True, force=True)

    assert result.outcome == "refused"
    assert any("protected" in r for r in result.refusals)
    assert live_values(zk) == LIVE


def test_an_empty_live_tree_with_a_desired_state_is_refused(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot, live={"/app": b""})

    result = apply_tree(app, "app", yes=True)

    assert result.outcome == "refused"
    assert any("live tree is empty" in r for r in result.refusals)
    assert live_values(zk) == {"/app": b""}


def test_ephemeral_nodes_are_never_touched_and_keep_their_parents(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot, desired={k: v for k, v in LIVE.items() if k != "/app/legacy"})
    zk.create("/app/cache/instance", b"me", ephemeral=True)
    zk.create("/app/session", b"")
    zk.create("/app/session/owner", b"me", ephemeral=True)

    result = apply_tree(app, "app", yes=True, prune=True, force=True)

    assert result.outcome == "applied"
    assert zk.get("/app/cache/instance")[0] == b"me"
    assert zk.exists("/app/session/owner") is not None
    assert zk.exists("/app/legacy") is None
    assert result.plan is not None
    assert any("ephemeral" in w for w in result.plan.warnings)


def test_a_sequential_looking_node_is_created_under_its_exact_name_with_a_warning(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot, desired={**LIVE, "/app/queue-0000000007": b"job"})

    result = apply_tree(app, "app", yes=True)

    assert result.outcome == "applied"
    assert zk.get("/app/queue-0000000007")[0] == b"job"
    assert result.plan is not None
    assert any("sequential" in w for w in result.plan.warnings)


def test_adopt_makes_desired_equal_live_for_the_matching_globs_only(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)

    result = adopt(app, "app", paths=["/app/cache"], message="accept ttl", actor="bob")

    assert result is not None and (result.added, result.removed, result.modified) == (0, 0, 1)
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        desired = desired_store.load_desired(session, tree)
        revision = desired_store.latest_revision(session, tree)
        assert revision is not None
        assert (revision.source, revision.author) == ("adopt", "bob")
    assert desired["/app/cache/ttl"].data == b"60"
    assert desired["/app/db/url"].data == b"jdbc:new"
    entry = audit_log(app, "app")[0]
    assert (entry.direction, entry.outcome, entry.actor) == ("adopt", "adopted", "bob")


def test_adopt_with_a_glob_that_matches_nothing_is_refused_and_changes_no_revision(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)

    result = run_cli("adopt", "app", "--paths", "/app/cach/**", env=_cli_env_for(app))

    assert result.exit_code == 1
    assert "'/app/cach/**' match no managed path" in result.stderr
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        assert [r.source for r in desired_store.list_revisions(session, tree)] == ["test"]


def _cli_env_for(app: App) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env["ZKDRIFT_DATABASE_URL"] = app.settings.database_url_value
    env["ZKDRIFT_HOME"] = str(app.settings.home)
    return env


def test_adopt_without_globs_takes_every_managed_path_and_marks_it_applied(
    app: App, zk: KazooClient, zk_chroot: str
) -> None:
    setup_tree(app, zk, zk_chroot)
    zk.create("/app/worker", b"x", ephemeral=True)

    result = adopt(app, "app")
    again = adopt(app, "app")

    assert result.revision is not None and again.revision is None
    with app.db.session() as session:
        tree = tree_store.get_tree(session, "app")
        desired = desired_store.load_desired(session, tree)
        applied = session.get(DesiredRevision, tree.applied_revision_id)
        assert applied is not None and applied.number == result.revision.revision
    assert {p: n.data for p, n in desired.nodes.items()} == LIVE
    assert apply_tree(app, "app", yes=True, prune=True).outcome == "no-op"


def test_cli_plan_exits_2_with_changes_and_never_prints_secrets(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    setup_tree(app, zk, zk_chroot)

    planned = run_cli("plan", "app", env=cli_env)
    as_json = run_cli("plan", "app", "--json", env=cli_env)

    assert planned.exit_code == 2, planned.stderr
    assert '~ /app/db/url: "jdbc:old" -> "jdbc:new"' in planned.stdout
    assert "+ /app/feature/flag" in planned.stdout
    assert "Plan: 2 to create, 3 to change, 0 to delete." in planned.stdout
    for output in (planned.stdout, as_json.stdout):
        assert "hunter2" not in output
        assert "/app/db/password" in output
    assert json.loads(as_json.stdout)["ops_count"] == 5


def test_cli_apply_dry_run_then_yes_then_plan_exits_0(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    setup_tree(app, zk, zk_chroot)

    dry = run_cli("apply", "app", env=cli_env)
    applied = run_cli("apply", "app", "--yes", "--reason", "ticket 7", env=cli_env)
    clean = run_cli("plan", "app", env=cli_env)
    audit = run_cli("audit", "app", "--json", "--dry-runs", env=cli_env)

    assert dry.exit_code == 0 and "dry-run" in dry.stdout
    assert applied.exit_code == 0, applied.stderr
    assert "applied" in applied.stdout and "hunter2" not in applied.stdout
    assert clean.exit_code == 0 and "No changes" in clean.stdout
    entries = json.loads(audit.stdout)
    outcomes = [(e["outcome"], e["dry_run"], e["reason"]) for e in entries]
    assert outcomes == [("applied", False, "ticket 7"), ("dry-run", True, "")]
    detail = run_cli("audit", "app", "--apply", str(entries[0]["apply_id"]), env=cli_env)
    assert detail.exit_code == 0
    assert "applied     set          /app/db/url" in detail.stdout
    assert "hunter2" not in detail.stdout


def test_cli_apply_exits_1_when_refused_naming_the_moved_paths(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    setup_tree(app, zk, zk_chroot)
    planned = json.loads(run_cli("plan", "app", "--json", env=cli_env).stdout)
    zk.set("/app/cache/ttl", b"90")

    result = run_cli("apply", "app", "--plan", str(planned["plan_id"]), "--yes", env=cli_env)

    assert result.exit_code == 1
    assert "moved: /app/cache/ttl" in result.stderr
    assert zk.get("/app/cache/ttl")[0] == b"90"


def test_cli_adopt_records_a_revision(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    setup_tree(app, zk, zk_chroot)

    result = run_cli("adopt", "app", "--paths", "/app/db/*", "--json", env=cli_env)

    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["paths"] == ["/app/db/password", "/app/db/url"]
    assert payload["modified"] == 2
