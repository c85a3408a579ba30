"""Desired state from Git: repositories made in the test (no network), real ZooKeeper,
the ``zkdrift`` command with its exit codes, and the audit."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.cli import run_cli
from tests.support.git import Repo, git
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.errors import InvalidInputError
from zkdrift.policy import DesiredSource
from zkdrift.reconcile import audit_log
from zkdrift.reports.views import summary_facts
from zkdrift.store.models import DesiredRevision
from zkdrift.trees import TreeSpec, add_tree, update_tree

CONFIG = {
    "config/.zkdata": "root data",
    "config/db/host": "db.internal",
    "config/db/pool": "32",
    "config/flags.json": '{"beta": true}\n',
}


def cli(*args: str, env: dict[str, str], code: int = 0) -> str:
    result = run_cli(*args, env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr


def register(app: App, hosts: str, name: str = "app") -> None:
    add_tree(app, TreeSpec(name=name, hosts=hosts, root="/app"), check=False)


def follow(app: App, spec: str, name: str = "app") -> None:
    update_tree(app, name, desired_source=DesiredSource.parse(spec).model_dump())


def revision_id(app: App, number: int) -> int:
    with app.db.session() as session:
        found = session.scalar(select(DesiredRevision.id).where(DesiredRevision.number == number))
    assert found is not None
    return found


def revisions(app: App, name: str = "app") -> list[desired.RevisionResult]:
    return desired.desired_log(app, name)


def test_a_merged_commit_is_synced_once_shows_as_pending_and_is_applied(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_tree(zk, {"/app": b"root data", "/app/db/host": b"db.internal", "/app/db/pool": b"32"})
    register(app, zk_chroot)
    repo = Repo(tmp_path / "git")
    first = repo.commit("Initial config", CONFIG)
    out = cli("tree", "set", "app", "--desired-source", f"{repo.url}//config?ref=main", env=cli_env)
    assert f"{repo.url}//config?ref=main" in out

    synced = json.loads(cli("desired", "sync", "app", "--json", env=cli_env))
    again = cli("desired", "sync", "app", env=cli_env)

    assert synced["changed"] is True and synced["commit"] == first
    rev = synced["revision"]
    assert (rev["revision"], rev["source"], rev["commit"]) == (1, "git", first)
    assert rev["commit_author"] == "Ann Author <ann@example.com>"
    assert rev["commit_message"] == "Initial config"
    assert rev["source_url"] == f"{repo.url}//config?ref=main"
    assert "up to date" in again and "nothing written" in again
    assert len(revisions(app)) == 1  # the same commit writes nothing
    # The directory tree's bytes, exactly.
    exported = desired.export_desired(app, "app").state
    assert exported["/app/flags.json"].data == b'{"beta": true}\n'
    assert exported["/app"].data == b"root data"
    cli("apply", "app", "--yes", env=cli_env)
    assert zk.get("/app/flags.json")[0] == b'{"beta": true}\n'

    merged = repo.commit("Raise the pool (#12)", {"config/db/pool": "64"})
    cli("desired", "sync", "app", env=cli_env)
    diff = cli("diff", "app", env=cli_env, code=2)
    assert "/app/db/pool  (changed, pending)" in diff
    log = cli("desired", "log", "app", env=cli_env)
    assert f"commit {merged[:12]} by Ann Author" in log

    applied = json.loads(cli("apply", "app", "--yes", "--json", env=cli_env))

    assert applied["outcome"] == "applied"
    assert zk.get("/app/db/pool")[0] == b"64"
    cli("diff", "app", env=cli_env)
    entry = audit_log(app, "app")[0]
    assert (entry.direction, entry.outcome, entry.ops_applied) == ("push", "applied", 1)
    assert entry.desired_revision_id == revision_id(app, 2)
    facts = dict(summary_facts(app, "app").itertuples(index=False))
    assert (
        f"commit {merged[:12]} by Ann Author <ann@example.com>: Raise the pool"
        in (facts["desired state"])
    )
    assert facts["desired source"] == f"{repo.url}//config?ref=main"


def test_a_malformed_commit_is_refused_in_one_line_and_the_previous_revision_stays_current(
    app: App, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    good = repo.commit("good", {"app.yaml": '/app/a: "1"\n/app/b: "2"\n'})
    follow(app, f"{repo.remote}//app.yaml?ref=main")  # a plain path works too
    cli("desired", "sync", "app", env=cli_env)
    bad = repo.commit("oops", {"app.yaml": '/app/a: "1"\n/app/b: [\n'})

    result = run_cli("desired", "sync", "app", env=cli_env)

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{bad[:12]}:app.yaml:3: malformed YAML" in lines[0]
    assert "zkdrift-git-" not in result.stderr  # the temporary checkout is never named
    log = revisions(app)
    assert len(log) == 1 and log[0].commit == good
    assert desired.export_desired(app, "app").state["/app/b"].data == b"2"
    # A path outside the root is refused by import's own rules, naming the entry.
    repo.commit("outside", {"app.yaml": '/app/a: "1"\n/other: "x"\n'})
    result = run_cli("desired", "sync", "app", env=cli_env)
    assert result.exit_code == 1 and "'/other'" in result.stderr
    assert len(revisions(app)) == 1


def test_a_force_pushed_branch_is_followed_to_its_new_commit(
    app: App, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    repo.commit("base", {"config/a": "1"})
    repo.commit("to be rewritten", {"config/a": "2"})
    follow(app, f"{repo.url}//config?ref=main")
    cli("desired", "sync", "app", env=cli_env)

    rewritten = repo.force_push("rewritten", {"config/a": "3", "config/b": "new"})
    out = cli("desired", "sync", "app", env=cli_env)

    assert f"commit {rewritten[:12]}" in out
    log = revisions(app)
    assert log[0].commit == rewritten
    state = desired.export_desired(app, "app").state
    assert (state["/app/a"].data, state["/app/b"].data) == (b"3", b"new")


def test_a_tag_is_followed_and_an_annotated_tag_records_its_commit(
    app: App, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    tagged = repo.commit("release", {"config/a": "1"})
    repo.tag("v1.0", message="Release 1.0")
    repo.commit("later", {"config/a": "2"})
    follow(app, f"{repo.url}//config?ref=v1.0")

    result = desired.sync_desired(app, "app")

    assert result.commit == tagged
    assert desired.export_desired(app, "app").state["/app/a"].data == b"1"


def test_a_hand_made_change_is_refused_in_one_line_and_an_override_is_recorded_and_reported(
    app: App, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    repo.commit("base", {"config/a": "1"})
    follow(app, f"{repo.url}//config?ref=main")
    cli("desired", "sync", "app", env=cli_env)
    (tmp_path / "other.yaml").write_text('/app/a: "9"\n')

    for args in (
        ("desired", "set", "app", "/app/a", "2"),
        ("desired", "unset", "app", "/app/a"),
        ("desired", "import", "app", str(tmp_path / "other.yaml")),
        ("desired", "rollback", "app", "1"),
        ("adopt", "app"),
    ):
        result = run_cli(*args, env=cli_env)
        assert result.exit_code == 1, (args, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert "the source of truth is the repository" in lines[0]
    assert len(revisions(app)) == 1

    out = cli("desired", "set", "app", "/app/a", "2", "--override", "-m", "hotfix", env=cli_env)

    assert "override by" in out
    latest = revisions(app)[0]
    assert (latest.revision, latest.override, latest.source) == (2, True, "set")
    facts = dict(summary_facts(app, "app").itertuples(index=False))
    assert "revision 2: override by" in facts["overrides"]
    assert "override by" in facts["desired state"]
    # The next commit synced replaces the override.
    repo.commit("next", {"config/a": "3"})
    desired.sync_desired(app, "app")
    facts = dict(summary_facts(app, "app").itertuples(index=False))
    assert "overrides" not in facts
    assert desired.export_desired(app, "app").state["/app/a"].data == b"3"


def test_credentials_in_the_source_url_never_reach_output_records_or_logs(
    app: App, cli_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    register(app, "127.0.0.1:1")
    password = "s3cr3t-t0ken-value"
    spec = f"https://deploy:{password}@127.0.0.1:1/ops/config.git//app?ref=main"

    set_out = cli("tree", "set", "app", "--desired-source", spec, env=cli_env)
    show = cli("tree", "show", "app", "--json", env=cli_env)
    result = run_cli("desired", "sync", "app", env=cli_env)
    sync_log = run_cli("-vv", "desired", "sync", "app", env=cli_env)

    assert result.exit_code == 1 and sync_log.exit_code == 1
    assert "cannot reach https://deploy:***@127.0.0.1:1/ops/config.git//app?ref=main" in (
        result.stderr
    )
    assert json.loads(show)["policy"]["desired_source"] == (
        "https://deploy:***@127.0.0.1:1/ops/config.git//app?ref=main"
    )
    everything = set_out + show + result.stdout + result.stderr + sync_log.stderr + caplog.text
    assert password not in everything
    with app.db.session() as session:
        rows = session.scalars(select(DesiredRevision)).all()
    assert rows == []


def test_a_hostile_repository_is_refused_by_the_rules_of_directory_import(
    app: App, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    repo.commit("base", {"config/a": "1"})
    follow(app, f"{repo.url}//config?ref=main")
    cli("desired", "sync", "app", env=cli_env)
    # A link that leaves the directory (to a file that exists on this machine).
    os.symlink("/etc/hostname", repo.work / "config" / "leak")
    repo.commit("leak")
    result = run_cli("desired", "sync", "app", env=cli_env)
    assert result.exit_code == 1
    assert "leak" in result.stderr and "symbolic link leads outside" in result.stderr
    (repo.work / "config" / "leak").unlink()
    # A file larger than one ZooKeeper request: refused by its size, before it is read.
    repo.commit("huge", {"config/huge": b"x" * (1024 * 1024 + 1)})
    result = run_cli("desired", "sync", "app", env=cli_env)
    assert result.exit_code == 1 and "config/huge" in result.stderr
    assert "larger than" in result.stderr
    repo.commit("no more huge", {"config/huge": None})
    # A hook in the repository never runs (a fetch runs none; this one would write a file).
    hook = repo.remote / "hooks" / "post-update"
    marker = tmp_path / "hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    git(repo.work, "config", "core.hooksPath", str(tmp_path / "nothing"))
    good = repo.commit("fine again", {"config/a": "2"})
    marker.unlink(missing_ok=True)  # the push itself may run the remote's hook
    out = cli("desired", "sync", "app", env=cli_env)
    assert f"commit {good[:12]}" in out
    assert not marker.exists()
    assert len(revisions(app)) == 2


@pytest.mark.parametrize("bad", ["relative//x?ref=main", "/srv/x//app", "/srv/x?ref=-rf"])
def test_a_bad_desired_source_is_one_line_and_changes_nothing(
    app: App, cli_env: dict[str, str], bad: str
) -> None:
    register(app, "127.0.0.1:1")

    result = run_cli("tree", "set", "app", "--desired-source", bad, env=cli_env)

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (
        app
        and json.loads(cli("tree", "show", "app", "--json", env=cli_env))["policy"].get(
            "desired_source"
        )
        is None
    )


def test_two_syncs_at_once_write_one_revision(app: App, tmp_path: Path) -> None:
    register(app, "127.0.0.1:1")
    repo = Repo(tmp_path / "git")
    repo.commit("base", {"config/a": "1", "config/b": "2"})
    follow(app, f"{repo.url}//config?ref=main")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sync() -> None:
        barrier.wait()
        try:
            desired.sync_desired(app, "app")
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(revisions(app)) == 1


def test_sync_without_a_desired_source_says_how_to_set_one(app: App) -> None:
    register(app, "127.0.0.1:1")
    with pytest.raises(InvalidInputError, match="--desired-source"):
        desired.sync_desired(app, "app")
