"""``zkdrift desired``, ``diff`` and ``history`` as users run them: real process, exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from kazoo.client import KazooClient
from sqlalchemy import select

from tests.support.cli import run_cli
from tests.support.zk import create_tree
from zkdrift import desired
from zkdrift.app import App
from zkdrift.formats import load_export
from zkdrift.reconcile import adopt
from zkdrift.snapshot import take_snapshot
from zkdrift.store.engine import make_engine
from zkdrift.store.models import Base
from zkdrift.trees import TreeSpec
from zkdrift.trees import add_tree as add_tree_lib

LIVE = {
    "/app": b"",
    "/app/a": b"1",
    "/app/multi": b"line one\nline two\nline three\n",
    "/app/bin": b"\x00\xff\xfe binary",
}
SECRET = b"hunter2-s3cret-value"
CUSTOM_SECRET = b"custom-glob-hidden-bytes"


def register(app: App, hosts: str, **kw: object) -> None:
    """Set-up that is not under test goes through the library: no process start-up."""
    add_tree_lib(app, TreeSpec(name="app", hosts=hosts, root="/app", **kw), check=False)  # type: ignore[arg-type]


def cli_ok(*args: str, env: dict[str, str], code: int = 0) -> str:
    result = run_cli(*args, env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout


def revisions(env: dict[str, str]) -> list[dict[str, object]]:
    log: list[dict[str, object]] = json.loads(cli_ok("desired", "log", "app", "--json", env=env))
    return log


def test_diff_exits_0_without_differences_and_2_with_them_showing_a_value_diff(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")
    clean = cli_ok("diff", "app", env=cli_env)
    zk.set("/app/a", b"2")
    zk.set("/app/multi", b"line one\nline TWO\nline three\n")
    zk.set("/app/bin", b"\x01\xfe other binary")
    desired.set_value(app, "app", "/app/new", b"hello")

    out = cli_ok("diff", "app", env=cli_env, code=2)

    assert "no differences" in clean
    lines = out.splitlines()
    assert lines[0].startswith("--- live (snapshot")
    assert lines[1] == "+++ desired (revision 2)"
    a = lines.index("/app/a  (changed, drift)")
    assert lines[a + 1 : a + 3] == ["-2", "+1"]
    multi = lines.index("/app/multi  (changed, drift)")
    assert lines[multi + 1 : multi + 6] == [
        "@@ -1,3 +1,3 @@",
        " line one",
        "-line TWO",
        "+line two",
        " line three",
    ]
    new = lines.index("/app/new  (missing live, pending)")
    assert lines[new + 1] == "+hello"
    binary = lines.index("/app/bin  (changed, drift)")
    assert lines[binary + 1].startswith("-<binary 15 bytes sha256:")
    assert lines[binary + 2].startswith("+<binary 10 bytes sha256:")
    assert "binary" not in out.replace("<binary", "")  # raw bytes never printed
    assert lines[-1].startswith("4 differences: 3 drift, 1 pending, 0 conflict")


def test_diff_json_lists_classified_items_and_exits_2(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")
    zk.set("/app/a", b"by hand")
    desired.set_value(app, "app", "/app/a", b"by desire")

    doc = json.loads(cli_ok("diff", "app", "--json", env=cli_env, code=2))

    assert doc["counts"] == {"total": 1, "drift": 0, "pending": 0, "conflict": 1}
    [item] = doc["items"]
    assert (item["path"], item["kind"], item["classification"]) == (
        "/app/a",
        "data_changed",
        "conflict",
    )
    assert (item["desired"]["value"], item["live"]["value"], item["base"]["value"]) == (
        "by desire",
        "by hand",
        "1",
    )


def test_diff_compares_snapshots_with_against_or_from_and_to(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    first = take_snapshot(app, "app").snapshot_id
    zk.set("/app/a", b"2")
    second = take_snapshot(app, "app").snapshot_id

    between = cli_ok("diff", "app", "--from", str(first), "--to", str(second), env=cli_env, code=2)
    against = json.loads(
        cli_ok("diff", "app", "--against", f"snapshot:{first}", "--json", env=cli_env, code=2)
    )
    bad = run_cli("diff", "app", "--against", "yesterday", env=cli_env)
    half = run_cli("diff", "app", "--from", str(first), env=cli_env)
    unknown = run_cli("diff", "app", "--from", str(first), "--to", "999", env=cli_env)

    assert f"--- snapshot {first}" in between and "/app/a  (changed)" in between
    assert "-1\n+2" in between
    assert [(i["path"], i["kind"]) for i in against["items"]] == [("/app/a", "data_changed")]
    assert against["reference_snapshot_id"] == first
    assert bad.exit_code == 1 and "snapshot:ID" in bad.stderr
    assert half.exit_code == 1 and "--from and --to" in half.stderr
    assert unknown.exit_code == 1 and "snapshot 999" in unknown.stderr


def test_diff_of_a_tree_without_desired_state_is_an_error(
    app: App, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    register(app, zk_chroot)

    result = run_cli("diff", "app", env=cli_env)

    assert result.exit_code == 1
    assert "no desired state yet" in result.stderr


def test_desired_commands_round_trip_bytes_and_record_each_revision(
    app: App, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, zk_chroot)
    env = cli_env | {"ZKDRIFT_AUTHOR": "release-bot"}
    (tmp_path / "desired.yaml").write_text("db:\n  host: db.internal\n  port: 5432\n")
    (tmp_path / "blob").write_bytes(bytes(range(256)))

    cli_ok("desired", "import", "app", str(tmp_path / "desired.yaml"), "-m", "v1", env=env)
    cli_ok("desired", "set", "app", "/app/blob", "--file", str(tmp_path / "blob"), env=env)
    cli_ok(
        "desired",
        "set",
        "app",
        "/app/b64",
        base64.b64encode(b"\xff\x00").decode(),
        "--base64",
        env=env,
    )
    unset = cli_ok(
        "desired", "unset", "app", "/app/db/port", "--author", "carol", "--json", env=env
    )
    rollback = cli_ok("desired", "rollback", "app", "1", env=env)
    cli_ok("desired", "export", "app", "--revision", "4", "-o", str(tmp_path / "r4.json"), env=env)
    stdout_export = run_cli("desired", "export", "app", "--format", "yaml", env=env)

    log = revisions(env)
    assert [(r["revision"], r["source"], r["author"]) for r in log] == [
        (5, "rollback", "release-bot"),
        (4, "unset", "carol"),
        (3, "set", "release-bot"),
        (2, "set", "release-bot"),
        (1, "import", "release-bot"),
    ]
    assert json.loads(unset)["revision"]["removed"] == 1
    assert rollback.startswith("desired revision 5 of app")
    r4 = {p: n.data for p, n in load_export((tmp_path / "r4.json").read_bytes()).nodes.items()}
    assert r4 == {
        "/app": b"",
        "/app/db": b"",
        "/app/db/host": b"db.internal",
        "/app/blob": bytes(range(256)),
        "/app/b64": b"\xff\x00",
    }
    assert stdout_export.exit_code == 0
    assert "/app/db/port: '5432'" in stdout_export.stdout


def test_bad_input_exits_1_naming_the_entry_and_writes_no_revision(
    app: App, zk_chroot: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    register(app, zk_chroot, excludes=("/app/runtime",))
    # One of each kind here; integration tests cover the rest of the rules.
    cases = {
        "broken.yaml": ("db:\n  host: a\n   port: 1\n", "broken.yaml:3"),
        "broken.json": ('{\n  "/app/a": "1",\n  "/app/b": \n}\n', "broken.json:4"),
        "dups.json": ('{\n  "/app/a": "1",\n  "/app/a": "2"\n}\n', "'/app/a'"),
        "excluded.yaml": ("/app/a: x\n/app/runtime/leader: y\n", "'/app/runtime/leader'"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)

        result = run_cli("desired", "import", "app", str(tmp_path / name), env=cli_env)

        assert result.exit_code == 1, name
        assert expected in result.stderr.replace("\n", ""), (name, result.stderr)
        assert "Traceback" not in result.stderr
    bad_b64 = run_cli("desired", "set", "app", "/app/x", "not base64!", "--base64", env=cli_env)
    assert bad_b64.exit_code == 1 and "base64" in bad_b64.stderr
    assert desired.desired_log(app, "app") == []


def test_history_shows_each_change_of_a_path_with_versions(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    take_snapshot(app, "app")
    zk.set("/app/a", b"2")
    zk.delete("/app/bin")
    take_snapshot(app, "app")

    text = cli_ok("history", "app", "/app/a", env=cli_env)
    tree = json.loads(cli_ok("history", "app", "--json", env=cli_env))

    lines = text.splitlines()
    assert "initial  /app/a  (version 0)" in lines[0]
    assert "changed  /app/a  (version 0 -> 1)" in lines[2]
    assert lines[3:5] == ["    -1", "    +2"]
    assert [(e["path"], e["event"]) for e in tree] == [
        ("/app/a", "changed"),
        ("/app/bin", "deleted"),
    ]
    assert tree[1]["before"]["binary"] is True


def test_secrets_never_reach_cli_output_logs_or_recorded_rows(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    env = cli_env | {"ZKDRIFT_SECRET_GLOBS": '["**/hidden*"]'}
    create_tree(zk, LIVE | {"/app/db_password": SECRET, "/app/hidden_key": CUSTOM_SECRET})
    register(app, zk_chroot)
    secret_file = tmp_path / "new-secret"
    secret_file.write_bytes(SECRET + b"-rotated")
    outputs = [
        run_cli("-vv", "desired", "adopt", "app", "--json", env=env),
        run_cli(
            "-vv", "desired", "set", "app", "/app/db_password", "--file", str(secret_file), env=env
        ),
    ]
    adopted = json.loads(outputs[0].stdout)["snapshot_id"]
    zk.set("/app/hidden_key", CUSTOM_SECRET + b"-changed")
    zk.set("/app/db_password", SECRET + b"-live")
    outputs += [
        run_cli("-vv", "diff", "app", env=env),
        run_cli("-vv", "diff", "app", "--json", env=env),
        run_cli("-vv", "diff", "app", "--against", f"snapshot:{adopted}", env=env),
        run_cli("history", "app", "--all", env=env),
        run_cli("history", "app", "--json", "--all", env=env),
    ]

    assert [r.exit_code for r in outputs] == [0, 0, 2, 2, 2, 0, 0]
    diff_text = outputs[2].stdout
    assert "/app/db_password  (changed, conflict)" in diff_text
    assert "<redacted hmac:" in diff_text
    for result in outputs:
        for secret in (SECRET, CUSTOM_SECRET):
            assert secret.decode() not in result.stdout + result.stderr
    # Recorded rows hold digests and sizes; only the value store (blobs) holds values.
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name == "blobs":
                    continue
                # node_states and configurations hold small values in ``data``.
                columns = [c for c in table.columns if c.name != "data"]
                dump = repr(conn.execute(select(*columns)).all()).encode()
                for secret in (SECRET, CUSTOM_SECRET):
                    assert secret not in dump, table.name
                    assert base64.b64encode(secret) not in dump, table.name
    finally:
        engine.dispose()


def test_a_hand_made_node_is_live_only_as_drift_and_created_in_history(
    app: App, zk: KazooClient, zk_chroot: str, cli_env: dict[str, str]
) -> None:
    create_tree(zk, LIVE)
    register(app, zk_chroot)
    adopt(app, "app")
    first = take_snapshot(app, "app").snapshot_id
    zk.create("/app/by-hand", b"x")
    zk.delete("/app/a")
    second = take_snapshot(app, "app").snapshot_id

    drift = cli_ok("diff", "app", env=cli_env, code=2)
    drift_json = json.loads(cli_ok("diff", "app", "--json", env=cli_env, code=2))
    history = cli_ok("diff", "app", "--from", str(first), "--to", str(second), env=cli_env, code=2)
    history_json = json.loads(
        cli_ok(
            "diff", "app", "--from", str(first), "--to", str(second), "--json", env=cli_env, code=2
        )
    )
    against = cli_ok("diff", "app", "--against", f"snapshot:{first}", env=cli_env, code=2)

    assert "/app/by-hand  (live only, drift)" in drift.splitlines()
    assert "/app/a  (missing live, drift)" in drift.splitlines()
    assert {(i["path"], i["kind"], i["label"]) for i in drift_json["items"]} == {
        ("/app/by-hand", "removed", "live only"),
        ("/app/a", "added", "missing live"),
    }
    for text in (history, against):
        assert "/app/by-hand  (created" in text and "/app/a  (deleted" in text
    assert {(i["path"], i["kind"], i["label"]) for i in history_json["items"]} == {
        ("/app/by-hand", "added", "created"),
        ("/app/a", "removed", "deleted"),
    }
