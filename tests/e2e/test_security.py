"""Safe to point at a production ensemble: ACLs on everything zkdrift creates, TLS and
SASL connections, credentials kept out of sight, and ZooKeeper refusals as one line.

Every test runs the real ``zkdrift`` command against real servers: the session's
ZooKeeper (digest ACLs), a mutual-TLS ZooKeeper and a SASL ZooKeeper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl, make_digest_acl
from sqlalchemy import select

from tests.support.cli import CliResult, run_cli
from tests.support.hostile import ECHOED_SECRET, hostile_sources
from tests.support.prefect import artifacts_of
from tests.support.secure import CLIENT_X509_ID, SASL_USER, SaslServer, TlsServer
from tests.support.zk import connected, create_tree
from zkdrift.app import App
from zkdrift.flows.params import PipelineParams
from zkdrift.flows.pipeline import pipeline_flow
from zkdrift.reports.render import report_path
from zkdrift.store.engine import make_engine
from zkdrift.store.models import Base

ADMIN_PASSWORD = "adm1n-Pa55-for-the-tree"
SECRET = "hunter2-the-db-password"


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def one_error_line(result: CliResult) -> str:
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def admin(zk_chroot: str) -> Iterator[KazooClient]:
    """A client in this test's chroot, authenticated as the tree's owner."""
    with connected(zk_chroot, auth_data=[("digest", f"admin:{ADMIN_PASSWORD}")]) as zk:
        yield zk


@pytest.fixture
def anonymous(zk_chroot: str) -> Iterator[KazooClient]:
    with connected(zk_chroot) as zk:
        yield zk


def assert_unreadable(zk: KazooClient, *paths: str) -> None:
    for path in paths:
        with pytest.raises(NoAuthError):
            zk.get(path)


def assert_database_holds_none_of(db_url: str, *secrets: str) -> None:
    """No table holds a credential (blobs and configurations hold znode values only)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                dump = repr(conn.execute(select(table)).all())
                for secret in secrets:
                    assert secret not in dump, table.name
    finally:
        engine.dispose()


# -- ACLs -------------------------------------------------------------------------------


def test_apply_into_a_digest_protected_tree_creates_nothing_anyone_else_can_read(
    admin: KazooClient,
    anonymous: KazooClient,
    zk_chroot: str,
    cli_env: dict[str, str],
    db_url: str,
) -> None:
    owner_only = [make_digest_acl("admin", ADMIN_PASSWORD, all=True)]
    admin.create("/s", b"", acl=owner_only)
    admin.create("/s/app", b"", acl=owner_only)
    env = cli_env | {"ZK_ADMIN": f"digest:admin:{ADMIN_PASSWORD}"}
    ok(run_cli("tree", "add", "s", "--hosts", zk_chroot, "--root", "/s", "--auth-env",
               "ZK_ADMIN", env=env))  # fmt: skip
    ok(run_cli("desired", "set", "s", "/s/sec/db/password", SECRET, env=env))

    plan = run_cli("plan", "s", env=env)
    applied = ok(run_cli("apply", "s", "--yes", env=env))

    assert plan.exit_code == 2
    assert "digest:admin:" in plan.stdout  # the inherited ACL, shown in the plan
    assert "applied 3 ops" in applied.stdout
    assert_unreadable(anonymous, "/s/sec", "/s/sec/db", "/s/sec/db/password")
    assert admin.get("/s/sec/db/password")[0] == SECRET.encode()
    for path in ("/s/sec", "/s/sec/db", "/s/sec/db/password"):
        assert admin.get_acls(path)[0] == owner_only
    assert_database_holds_none_of(db_url, ADMIN_PASSWORD)
    for output in (plan.stdout, plan.stderr, applied.stdout, applied.stderr):
        assert ADMIN_PASSWORD not in output and SECRET not in output


def test_a_secret_path_is_not_created_world_readable_until_the_tree_gives_it_an_acl(
    admin: KazooClient, anonymous: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    admin.create("/open", b"")  # kazoo's default: world:anyone, all permissions
    admin.create("/open/app", b"")
    ok(run_cli("tree", "add", "open", "--hosts", zk_chroot, "--root", "/open", env=cli_env))
    ok(run_cli("desired", "set", "open", "/open/api_token", SECRET, env=cli_env))
    ok(run_cli("desired", "set", "open", "/open/log_level", "INFO", env=cli_env))

    refused = run_cli("apply", "open", "--yes", env=cli_env)

    assert refused.exit_code == 1
    assert "1 secret path would be readable by anyone (world:anyone:r)" in refused.stdout + (
        refused.stderr
    )
    assert "/open/api_token" in refused.stdout + refused.stderr
    assert anonymous.exists("/open/api_token") is None  # nothing was written
    assert anonymous.exists("/open/log_level") is None

    owner = f"digest:{make_digest_acl('admin', ADMIN_PASSWORD).id.id}:cdrwa"
    env = cli_env | {"ZK_ADMIN": f"digest:admin:{ADMIN_PASSWORD}"}
    ok(run_cli("tree", "set", "open", "--default-acl", owner, "--auth-env", "ZK_ADMIN", env=env))
    applied = ok(run_cli("apply", "open", "--yes", env=env))

    assert "applied 2 ops" in applied.stdout
    assert_unreadable(anonymous, "/open/api_token", "/open/log_level")
    assert admin.get("/open/api_token")[0] == SECRET.encode()


def test_acl_drift_is_reported_and_planned_like_data_drift_when_acls_are_captured(
    admin: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    admin.create("/a", b"")
    wanted = [make_acl("world", "anyone", read=True, write=True, admin=True)]
    admin.create("/a/conf", b"v", acl=wanted)
    ok(run_cli("tree", "add", "a", "--hosts", zk_chroot, "--root", "/a", "--acl", env=cli_env))
    ok(run_cli("adopt", "a", env=cli_env))
    admin.set_acls("/a/conf", [make_acl("world", "anyone", all=True)])

    diff = run_cli("diff", "a", "--json", env=cli_env)
    applied = ok(run_cli("apply", "a", "--yes", env=cli_env))

    assert diff.exit_code == 2
    (item,) = json.loads(diff.stdout)["items"]
    assert (item["path"], item["kind"]) == ("/a/conf", "acl_changed")
    assert "applied 1 ops" in applied.stdout
    assert admin.get_acls("/a/conf")[0] == wanted
    assert run_cli("diff", "a", env=cli_env).exit_code == 0


# -- TLS ----------------------------------------------------------------------------------


def tls_options(tls: TlsServer, *, with_client_cert: bool = True) -> list[str]:
    options = ["--tls", "--tls-ca", str(tls.certs.ca)]
    if with_client_cert:
        options += [
            "--tls-cert",
            str(tls.certs.client_cert),
            "--tls-key",
            str(tls.certs.client_key),
        ]
    return options


def tls_root(tls: TlsServer) -> str:
    root = f"/tls-{uuid.uuid4().hex[:8]}"
    with connected(
        tls.connect_string,
        use_ssl=True,
        ca=str(tls.certs.ca),
        certfile=str(tls.certs.client_cert),
        keyfile=str(tls.certs.client_key),
    ) as zk:
        zk.create(f"{root}/app", b"", makepath=True)
    return root


def test_a_tls_tree_is_read_and_applied_over_mutual_tls_with_an_x509_identity(
    tls_zk: TlsServer, cli_env: dict[str, str]
) -> None:
    root = tls_root(tls_zk)
    ok(run_cli("tree", "add", "t", "--hosts", tls_zk.connect_string, "--root", root,
               *tls_options(tls_zk), "--default-acl", f"x509:{CLIENT_X509_ID}:cdrwa",
               env=cli_env))  # fmt: skip
    ok(run_cli("adopt", "t", env=cli_env))
    ok(run_cli("desired", "set", "t", f"{root}/db/password", SECRET, env=cli_env))

    ok(run_cli("apply", "t", "--yes", env=cli_env))
    shown = ok(run_cli("show", "t", f"{root}/db/password", "--json", env=cli_env))

    (node,) = json.loads(shown.stdout)["nodes"]
    assert node["secret"] is True and "sha256" not in node and SECRET not in shown.stdout
    with connected(tls_zk.server.connect_string) as plain:  # the same server, no certificate
        assert_unreadable(plain, f"{root}/db", f"{root}/db/password")
    ok(run_cli("diff", "t", env=cli_env))


def test_a_tls_tree_without_a_client_certificate_is_refused_in_one_line(
    tls_zk: TlsServer, cli_env: dict[str, str]
) -> None:
    root = tls_root(tls_zk)
    ok(run_cli("tree", "add", "nocert", "--hosts", tls_zk.connect_string, "--root", root,
               *tls_options(tls_zk, with_client_cert=False), "--no-check",
               env=cli_env))  # fmt: skip

    line = one_error_line(
        run_cli("snapshot", "nocert", env=cli_env | {"ZKDRIFT_ZK_CONNECT_TIMEOUT": "3"})
    )

    assert "could not connect to ZooKeeper" in line and "(TLS)" in line


def test_tls_files_that_cannot_be_read_are_named_before_connecting(
    tls_zk: TlsServer, cli_env: dict[str, str]
) -> None:
    missing = str(tls_zk.certs.ca.parent / "nowhere.pem")
    ok(run_cli("tree", "add", "bad", "--hosts", tls_zk.connect_string, "--root", "/",
               "--tls", "--tls-ca", missing, "--no-check", env=cli_env))  # fmt: skip

    line = one_error_line(run_cli("snapshot", "bad", env=cli_env))

    assert f"cannot read the TLS CA file {missing}" in line


# -- SASL ---------------------------------------------------------------------------------


def test_a_sasl_tree_logs_in_with_digest_md5_and_its_nodes_are_the_user_s_alone(
    sasl_zk: SaslServer, cli_env: dict[str, str], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = f"/sasl-{uuid.uuid4().hex[:8]}"
    env = cli_env | {"ZK_SASL": sasl_zk.auth}
    with connected(sasl_zk.connect_string) as zk:
        zk.create(f"{root}/app", b"", makepath=True)
    ok(run_cli("tree", "add", "s", "--hosts", sasl_zk.connect_string, "--root", root,
               "--auth-env", "ZK_SASL", env=env))  # fmt: skip
    ok(run_cli("tree", "set", "s", "--default-acl", f"sasl:{SASL_USER}:cdrwa", env=env))
    ok(run_cli("adopt", "s", env=env))
    ok(run_cli("desired", "set", "s", f"{root}/db/password", SECRET, env=env))

    applied = ok(run_cli("-vv", "apply", "s", "--yes", env=env))

    with connected(sasl_zk.connect_string) as anonymous:
        assert_unreadable(anonymous, f"{root}/db", f"{root}/db/password")
    ok(run_cli("diff", "s", env=env))
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for text in (applied.stdout, applied.stderr, logs):
        assert sasl_zk.password not in text and SECRET not in text
    assert_database_holds_none_of(db_url, sasl_zk.password)


def test_wrong_sasl_credentials_fail_in_one_line_without_echoing_them(
    sasl_zk: SaslServer, cli_env: dict[str, str]
) -> None:
    env = cli_env | {
        "ZK_SASL": f"sasl:{SASL_USER}:wrong-Pa55word",
        "ZKDRIFT_ZK_CONNECT_TIMEOUT": "3",
    }
    ok(run_cli("tree", "add", "w", "--hosts", sasl_zk.connect_string, "--root", "/",
               "--auth-env", "ZK_SASL", "--no-check", env=env))  # fmt: skip

    line = one_error_line(run_cli("snapshot", "w", env=env))

    assert "wrong-Pa55word" not in line


# -- hostile input ------------------------------------------------------------------------


def table_rows(db_url: str) -> dict[str, list[object]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: list(conn.execute(select(t)).all()) for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_hostile_imports_are_one_error_line_naming_the_file_and_write_nothing(
    zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    env = cli_env
    create_tree(zk, {"/app": b"", "/app/a": b"1"})
    ok(run_cli("tree", "add", "app", "--hosts", zk_chroot, "--root", "/app", env=env))
    ok(run_cli("desired", "set", "app", "/app/a", "2", env=env))
    log = run_cli("desired", "log", "app", "--json", env=env)
    assert log.exit_code == 0, log.stderr
    before = table_rows(db_url)

    for source, named in hostile_sources(tmp_path / "hostile").items():
        start = time.monotonic()
        result = run_cli("desired", "import", "app", str(source), env=env)
        elapsed = time.monotonic() - start

        assert result.exit_code == 1, (source, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (source, result.stderr)
        assert str(named) in lines[0], (source, lines)
        assert "Traceback" not in result.stderr
        assert ECHOED_SECRET not in result.stderr
        # Refused before any expansion: a bomb expanded would run for minutes. The
        # bound includes starting the interpreter on a busy machine.
        assert elapsed < 20, (source, elapsed)

    assert table_rows(db_url) == before
    after = run_cli("desired", "log", "app", "--json", env=env)
    assert after.stdout == log.stdout


# -- ZooKeeper refusals -----------------------------------------------------------------


def test_a_lock_root_zkdrift_may_not_create_fails_the_apply_in_one_line(
    admin: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    admin.create("/app", b"")
    admin.create("/sealed", b"", acl=[make_acl("world", "anyone", read=True)])
    env = cli_env | {"ZKDRIFT_LOCK_ROOT": "/sealed/locks"}
    ok(run_cli("tree", "add", "app", "--hosts", zk_chroot, "--root", "/app", env=env))
    ok(run_cli("desired", "set", "app", "/app/x", "1", env=env))

    apply_line = one_error_line(run_cli("apply", "app", "--yes", env=env))
    status = run_cli("lock", "status", "app", env=env)

    assert "not authorised (NoAuth)" in apply_line
    assert status.exit_code == 0  # reading the lock root is allowed: nobody holds it
    assert admin.exists("/app/x") is None


# -- secrets never leak, not even as a plain digest ----------------------------------------

LIVE_SECRET = b"live-Pa55w0rd-that-drifted"
DESIRED_SECRET = b"desired-Pa55w0rd-from-git"
API_KEY = b"sk-live-0123456789abcdef"
ROTATED_KEY = b"sk-live-rotated-fedcba9876543210"
LEAK_SECRETS = (LIVE_SECRET, DESIRED_SECRET, API_KEY, ROTATED_KEY)


def leaks(text: str) -> list[str]:
    """What of the secret values ``text`` shows: the bytes, their base64, or a plain
    SHA-256 of them (which would confirm a guessed value)."""
    found = []
    for secret in LEAK_SECRETS:
        for form in (
            secret.decode(),
            base64.b64encode(secret).decode(),
            hashlib.sha256(secret).hexdigest()[:8],
        ):
            if form in text:
                found.append(form)
    return found


def test_no_output_log_artifact_report_or_record_shows_a_secret_or_its_plain_digest(
    flow_app: App,
    zk: KazooClient,
    zk_chroot: str,
    prefect_cli_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    create_tree(
        zk,
        {
            "/leak": b"",
            "/leak/db": b"",
            "/leak/db/password": LIVE_SECRET,
            "/leak/payments": b"",
            "/leak/payments/api-key": API_KEY,
            "/leak/log_level": b"INFO",
        },
    )
    env = prefect_cli_env | {
        "ZKDRIFT_DATABASE_URL": flow_app.settings.database_url_value,
        "ZKDRIFT_HOME": str(flow_app.settings.home),
    }
    ok(run_cli("tree", "add", "leak", "--hosts", zk_chroot, "--root", "/leak", env=env))
    ok(run_cli("adopt", "leak", env=env))
    zk.set("/leak/payments/api-key", ROTATED_KEY)  # history holds both values
    ok(run_cli("snapshot", "leak", env=env))
    ok(run_cli("desired", "set", "leak", "/leak/db/password", DESIRED_SECRET.decode(), env=env))
    caplog.set_level(logging.DEBUG)
    outputs = [
        run_cli("-vv", *args, env=env)
        for args in (
            ("diff", "leak"),
            ("diff", "leak", "--json"),
            ("plan", "leak", "--json"),
            ("plan", "leak"),
            ("apply", "leak"),
            ("history", "leak", "--all", "--json"),
            ("show", "leak", "--json"),
            ("status", "--json"),
            ("audit", "leak", "--json"),
        )
    ]

    state = pipeline_flow(PipelineParams(trees=["leak"]), return_state=True)

    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = artifacts_of(run_id)
    assert artifacts  # drift summary, table, report link, run summary
    report = report_path(flow_app.settings, "leak").read_text()
    shown = {
        "cli": "\n".join(o.stdout + o.stderr for o in outputs),
        "logs": "\n".join(r.getMessage() for r in caplog.records),
        "artifacts": json.dumps([a.data for a in artifacts.values()], default=str),
        "report": report,
    }
    for where, text in shown.items():
        assert leaks(text) == [], where
    assert "<redacted hmac:" in shown["cli"] and "&lt;redacted hmac:" in report
    engine = make_engine(flow_app.settings.database_url_value)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name in ("blobs", "configurations"):
                    continue  # the value stores
                # node_states holds small values in ``data``.
                columns = [c for c in table.columns if c.name != "data"]
                dump = repr(conn.execute(select(*columns)).all())
                raw = [s.decode() for s in LEAK_SECRETS if s.decode() in dump]
                encoded = [s for s in LEAK_SECRETS if base64.b64encode(s).decode() in dump]
                assert (raw, encoded) == ([], []), table.name
                if table.name in ("drift_items", "apply_ops"):  # shown to people
                    assert leaks(dump) == [], table.name
    finally:
        engine.dispose()


def test_lock_status_and_break_on_a_lock_root_zkdrift_may_not_read_fail_in_one_line(
    admin: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    admin.create("/app", b"")
    admin.create(
        "/hidden/locks/app",
        b"",
        makepath=True,
        acl=[make_digest_acl("admin", ADMIN_PASSWORD, all=True)],
    )
    env = cli_env | {"ZKDRIFT_LOCK_ROOT": "/hidden/locks"}
    ok(run_cli("tree", "add", "app", "--hosts", zk_chroot, "--root", "/app", env=env))

    status = one_error_line(run_cli("lock", "status", "app", env=env))
    broken = one_error_line(run_cli("lock", "break", "app", "--yes", env=env))

    assert "not authorised (NoAuth)" in status and "not authorised (NoAuth)" in broken
