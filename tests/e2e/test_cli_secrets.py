"""Secrets stay out of what the CLI prints, logs (at -vv) and records: plan, apply, audit, trees.

In-process commands log through pytest's handlers, so ``caplog`` at DEBUG
sees every record a user running ``zkdrift -vv`` would see on stderr.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl
from sqlalchemy import select, text

from tests.support.cli import CliResult, run_cli
from tests.support.db import MARIADB_ADMIN_URL, make_app
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.model import TreeState
from zkdrift.policy import TreePolicy
from zkdrift.snapshot import take_snapshot
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.engine import make_engine
from zkdrift.store.models import Base
from zkdrift.trees import TreeSpec, add_tree
from zkdrift.zk.client import ZkTarget, session

LIVE_SECRET = b"live-s3cret-password-value"
DESIRED_SECRET = b"desired-s3cret-password-value"
NEW_TOKEN = b"brand-new-t0ken-value"
CHILD_SECRET = b"created-by-kazoo-s3cret"
AUTH_CREDENTIAL = "zkuser:zk-auth-s3cret-credential"
DB_PASSWORD = "L0gs-Pa55word-q7"
SECRETS = (LIVE_SECRET, DESIRED_SECRET, NEW_TOKEN, CHILD_SECRET, AUTH_CREDENTIAL.encode())


def set_desired(app: App, nodes: dict[str, bytes]) -> None:
    with app.db.session() as s:
        tree = tree_store.get_tree(s, "app")
        desired_store.write_revision(
            s, tree, TreeState.of("/app", nodes), author="test", message="", source="test"
        )


def assert_no_secrets(*texts: str) -> None:
    for shown in texts:
        for secret in SECRETS:
            assert secret.decode() not in shown
            assert base64.b64encode(secret).decode() not in shown


def assert_rows_hold_no_secrets(db_url: str) -> None:
    """Only the value stores (blobs, rows' ``data``) hold values; the rest digests and sizes."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name == "blobs":
                    continue
                # node_states and configurations hold small values in ``data``.
                columns = [c for c in table.columns if c.name != "data"]
                dump = repr(conn.execute(select(*columns)).all()).encode()
                for secret in SECRETS:
                    assert secret not in dump, table.name
                    assert base64.b64encode(secret) not in dump, table.name
    finally:
        engine.dispose()


def test_plan_apply_and_audit_at_vv_never_show_secret_values_or_the_zookeeper_auth(
    app: App,
    zk: KazooClient,
    zk_chroot: str,
    cli_env: dict[str, str],
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    env = cli_env | {"ZKDRIFT_ZK_AUTH": f"digest:{AUTH_CREDENTIAL}"}
    create_tree(zk, {"/app": b"", "/app/db_password": LIVE_SECRET, "/app/url": b"jdbc:old"})
    # Nodes zkdrift creates are readable by its own identity alone (a secret among them).
    user, password = AUTH_CREDENTIAL.split(":")
    owner = f"digest:{make_digest_acl(user, password).id.id}:cdrwa"
    spec = TreeSpec(
        name="app", hosts=zk_chroot, root="/app", policy=TreePolicy(default_acl=(owner,))
    )
    add_tree(app, spec, check=False)
    set_desired(
        app,
        {
            "/app": b"",
            "/app/db_password": DESIRED_SECRET,
            "/app/api_token": NEW_TOKEN,
            "/app/url": b"jdbc:new",
        },
    )

    results: list[CliResult] = [
        run_cli("-vv", "plan", "app", env=env),
        run_cli("-vv", "plan", "app", "--json", env=env),
        run_cli("-vv", "apply", "app", env=env),
        run_cli("-vv", "apply", "app", "--yes", "--reason", "rotate", env=env),
        run_cli("-vv", "apply", "app", "--yes", "--json", env=env),
        run_cli("-vv", "audit", "app", env=env),
        run_cli("-vv", "audit", "app", "--json", env=env),
        run_cli("-vv", "show", "app", env=env),
        run_cli("-vv", "show", "app", "--json", env=env),
        run_cli("-vv", "tree", "list", env=env),
        run_cli("-vv", "tree", "show", "app", "--json", env=env),
    ]
    applies = json.loads(results[6].stdout)
    results += [
        run_cli("-vv", "audit", "app", "--apply", str(a["apply_id"]), env=env) for a in applies
    ]

    assert [r.exit_code for r in results[:5]] == [2, 2, 0, 0, 0], [r.stderr for r in results]
    assert zk.get("/app/db_password")[0] == DESIRED_SECRET  # the apply really wrote it
    assert "/app/db_password" in results[0].stdout
    assert "Connecting to" in caplog.text  # -vv logging really was on
    assert_no_secrets(caplog.text, *(r.stdout + r.stderr for r in results))
    assert_rows_hold_no_secrets(db_url)


def test_a_failing_apply_records_and_prints_no_value_of_the_path_it_failed_on(
    app: App,
    zk: KazooClient,
    zk_chroot: str,
    cli_env: dict[str, str],
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    create_tree(zk, {"/app": b""})
    # Readable by anyone, writable by no one: the planner sees a plain set, the write fails.
    zk.create("/app/db_password", LIVE_SECRET, acl=[make_acl("world", "anyone", read=True)])
    add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"), check=False)
    set_desired(app, {"/app": b"", "/app/db_password": DESIRED_SECRET})

    failed = run_cli("-vv", "apply", "app", "--yes", env=cli_env)
    as_json = run_cli("-vv", "apply", "app", "--yes", "--json", env=cli_env)
    audit = run_cli("audit", "app", "--json", env=cli_env)
    detail = run_cli(
        "audit", "app", "--apply", str(json.loads(audit.stdout)[0]["apply_id"]), env=cli_env
    )

    assert failed.exit_code == 1 and as_json.exit_code == 1, (failed.stdout, failed.stderr)
    assert "NoAuth" in failed.stdout + failed.stderr
    assert zk.get("/app/db_password")[0] == LIVE_SECRET
    assert json.loads(audit.stdout)[0]["outcome"] == "failed"
    assert_no_secrets(caplog.text, *(r.stdout + r.stderr for r in (failed, as_json, audit, detail)))
    assert_rows_hold_no_secrets(db_url)


def test_kazoo_debug_records_never_reach_logs_whatever_the_logging_level(
    zk_chroot: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("kazoo").setLevel(logging.DEBUG)  # as a notebook or a flow might
    try:
        target = ZkTarget(hosts=zk_chroot, auth=f"digest:{AUTH_CREDENTIAL}", connect_timeout=5)
        with session(target) as client:
            client.create("/secret_value", CHILD_SECRET)
            assert client.get("/secret_value")[0] == CHILD_SECRET
    finally:
        logging.getLogger("kazoo").setLevel(logging.NOTSET)
    assert "Connecting to" in caplog.text
    assert_no_secrets(caplog.text)


@pytest.fixture
def mariadb_url_with_password(mariadb_url: str) -> Iterator[str]:
    """The run's MariaDB database, reached through a user with a password."""
    user, password = f"zkdrift_logs_{uuid.uuid4().hex[:8]}", DB_PASSWORD
    name = mariadb_url.rsplit("/", 1)[1]
    admin = make_engine(MARIADB_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(text(f"GRANT ALL ON {name}.* TO '{user}'@'%'"))
    host = MARIADB_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"mysql+pymysql://{user}:{password}@{host}/{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
        admin.dispose()


def test_report_at_vv_never_logs_the_database_password(
    mariadb_url_with_password: str,
    zk: KazooClient,
    zk_chroot: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = mariadb_url_with_password
    app = make_app(url, tmp_path)
    try:
        create_tree(zk, {"/app": b"", "/app/db_password": LIVE_SECRET})
        add_tree(app, TreeSpec(name="app", hosts=zk_chroot, root="/app"), check=False)
        take_snapshot(app, "app")
    finally:
        app.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env |= {"ZKDRIFT_DATABASE_URL": url, "ZKDRIFT_HOME": str(tmp_path), "COLUMNS": "200"}

    result = run_cli("-vv", "report", "app", "-o", str(tmp_path / "r.html"), env=env)

    assert result.exit_code == 0, result.stderr
    assert "Executing notebook" in caplog.text  # papermill's own records were captured
    assert DB_PASSWORD not in caplog.text + result.stdout + result.stderr
    assert_no_secrets(caplog.text, result.stdout, result.stderr)
