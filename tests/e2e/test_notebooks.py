"""The report notebooks executed for real (papermill, the python3 kernel) and rendered
to HTML, through the library call the report flow makes and through ``zkdrift report``.

Executing notebooks is slow, so each scenario renders once per module and the
tests assert on that one result.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kazoo.client import KazooClient
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from sqlalchemy import text

from tests.support.cli import CliResult, run_cli
from tests.support.data import CONFIG, SECRET_1, SECRET_2, build_history
from tests.support.db import MARIADB_ADMIN_URL, make_app
from tests.support.zk import create_tree
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.errors import UnknownTreeError
from zkdrift.reports.render import execute_notebook, render_report
from zkdrift.snapshot import take_snapshot
from zkdrift.store.engine import Database, make_engine
from zkdrift.trees import TreeSpec, add_tree

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# A password-like segment that must never reach a report.
DB_PASSWORD = "Rep0rt-Pa55word-x9"
# One user per test run: runs sharing the MariaDB server never drop each other's.
DB_USER = f"zkdrift_report_{uuid.uuid4().hex[:8]}"


@dataclass
class Rendered:
    html: str
    database_url: str
    cli: CliResult
    cli_html: str


def _chroot(zk_server: ZooKeeperServer) -> tuple[KazooClient, str]:
    chroot = f"/zkdrift-test-{uuid.uuid4().hex[:12]}"
    admin = KazooClient(hosts=zk_server.connect_string, timeout=10)
    admin.start(timeout=15)
    admin.create(chroot)
    admin.stop()
    admin.close()
    client = KazooClient(hosts=f"{zk_server.connect_string}{chroot}", timeout=10)
    client.start(timeout=15)
    return client, f"{zk_server.connect_string}{chroot}"


@pytest.fixture(scope="module")
def mariadb_with_password() -> Iterator[str]:
    """A fresh MariaDB database reached through a user with a password."""
    admin = make_engine(MARIADB_ADMIN_URL)
    name = f"zkdrift_report_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        conn.execute(text(f"CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'"))
        conn.execute(text(f"GRANT ALL ON {name}.* TO '{DB_USER}'@'%'"))
    host = MARIADB_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    url = f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{host}/{name}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"DROP USER IF EXISTS '{DB_USER}'@'%'"))
        admin.dispose()


@pytest.fixture(scope="module")
def rendered(
    zk_server: ZooKeeperServer,
    mariadb_with_password: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rendered]:
    """Real history in MariaDB, rendered once by render_report and once by the CLI."""
    home = tmp_path_factory.mktemp("report-home")
    app = make_app(mariadb_with_password, home)
    client, hosts = _chroot(zk_server)
    try:
        build_history(app, client, hosts)
        output = render_report(app, "app", output=home / "report.html")
        env = _env(ZKDRIFT_DATABASE_URL=mariadb_with_password, ZKDRIFT_HOME=str(home))
        cli_out = home / "cli" / "report.html"
        cli = run_cli("report", "app", "--since", "30d", "-o", str(cli_out), "--json", env=env)
        yield Rendered(
            output.read_text(encoding="utf-8"),
            mariadb_with_password,
            cli,
            cli_out.read_text(encoding="utf-8") if cli_out.exists() else "",
        )
    finally:
        client.stop()
        client.close()
        app.close()


@dataclass
class RenderedEmpty:
    html: str
    database_url: str


@pytest.fixture(scope="module")
def rendered_empty(
    zk_server: ZooKeeperServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RenderedEmpty]:
    """A new tree with a single snapshot, rendered (SQLite)."""
    home = tmp_path_factory.mktemp("empty-home")
    url = f"sqlite:///{home / 'zkdrift.db'}"
    app = make_app(url, home)
    client, hosts = _chroot(zk_server)
    try:
        create_tree(client, CONFIG)
        add_tree(app, TreeSpec(name="fresh", hosts=hosts, root="/app"))
        take_snapshot(app, "fresh")
        html = render_report(app, "fresh", output=home / "fresh.html").read_text()
        yield RenderedEmpty(html, url)
    finally:
        client.stop()
        client.close()
        app.close()


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(values, COLUMNS="200")
    return env


def _images(html: str) -> list[str]:
    return re.findall(r'<img[^>]+src="data:image/png;base64,', html)


def _text(page: str) -> str:
    """What a reader sees of the page's body: no styles, scripts, tags or images;
    inline elements run on, blocks are apart; entities decoded."""
    page = re.sub(r"<(head|style|script)\b.*?</\1>", " ", page, flags=re.S | re.I)
    page = re.sub(r"</?(span|strong|em|code|wbr|a)\b[^>]*>", "", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(page).replace("\xa0", " "))


def _rows(page: str) -> list[list[str]]:
    """The text of each table row's cells."""
    return [
        [_text(cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
    ]


def test_notebooks_are_committed_with_outputs_stripped_and_a_parameters_cell() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), path
        tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, path
        source = "".join(tagged[0]["source"])
        for name in ("tree", "since", "until", "database_url"):
            assert re.search(rf"^{name} = None", source, re.M), (path, name)
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {"drift_report.ipynb", "history.ipynb"}


def test_the_report_holds_the_figures_and_tables_of_both_notebooks(rendered: Rendered) -> None:
    page = rendered.html
    text = _text(page)

    assert len(_images(page)) >= 4  # drift over time, snapshot size, changes, churn
    assert text.count("zkdrift report: app") == 1  # one title
    assert text.count("live size") == 1  # one summary
    for section in ("What drifted", "Drift over time", "Reconciled drift", "Recent changes"):
        assert section in text
    assert page.count("<table") >= 6
    rows = _rows(page)
    # Top churned path, open drift (desired -> live) and the apply audit, as tables.
    churned = next(r for r in rows if r[:2] == ["/app/billing/timeout", "3"])
    assert churned[2:6] == ["", "", "3", ""]  # created, deleted, changed, ACL changed
    drifted = next(r for r in rows if r[:2] == ["/app/search/size", "changed"])
    assert drifted[2:5] == ["drift", "10", "20"]  # classification, desired, live
    assert "revert hand edits" in text
    assert "Traceback" not in page


def test_the_report_opens_with_the_verdict_and_what_to_run(rendered: Rendered) -> None:
    text = _text(rendered.html)

    verdict = re.search(
        r"OUT OF SYNC: 1 path since (?:\d{4}-\d\d-\d\d )?\d\d:\d\d UTC; run ([^.]+?) Latest", text
    )
    assert verdict is not None, text[:600]
    assert verdict.group(1).strip() == "zkdrift apply app --yes or zkdrift adopt app"
    assert text.index("OUT OF SYNC") < text.index("What drifted") < text.index("Summary")


def test_the_report_never_shows_code_secret_values_or_the_database(
    rendered: Rendered,
) -> None:
    page = rendered.html + rendered.cli_html

    assert "reports.notebook_app" not in page  # code is hidden
    assert "&lt;redacted hmac:" in page  # the secret path's changes are shown redacted
    for secret in (SECRET_1.decode(), SECRET_2.decode(), DB_PASSWORD, rendered.database_url):
        assert secret not in page
    # Not even the safe form: the report does not name its database.
    database = rendered.database_url.rsplit("/", 1)[1]
    for part in (DB_USER, database, "mysql", "***@"):
        assert part not in page


def test_zkdrift_report_renders_the_same_report_from_the_command_line(
    rendered: Rendered,
) -> None:
    assert rendered.cli.exit_code == 0, rendered.cli.stderr
    payload = json.loads(rendered.cli.stdout)
    assert payload["tree"] == "app"
    assert payload["since"] is not None
    assert len(_images(rendered.cli_html)) >= 4
    assert "/app/billing/timeout" in _text(rendered.cli_html)
    assert DB_PASSWORD not in rendered.cli.stdout + rendered.cli.stderr


def test_a_new_tree_with_one_snapshot_and_no_desired_state_renders_a_report_that_says_so(
    rendered_empty: RenderedEmpty,
) -> None:
    page = rendered_empty.html
    text = _text(page)

    assert (
        "NO DESIRED STATE: this tree is observed only; to manage it, run "
        "zkdrift adopt fresh (accept live as desired) or zkdrift desired import fresh FILE"
    ) in text
    assert "single snapshot" in text
    assert "No drift checks: there is no desired state to check against." in text
    assert "Traceback" not in page
    assert len(_images(page)) == 1  # snapshot size only


def test_a_notebook_opened_by_hand_reports_on_the_first_tree_of_the_environment_database(
    rendered_empty: RenderedEmpty, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKDRIFT_DATABASE_URL", rendered_empty.database_url)

    nb = execute_notebook(NOTEBOOKS / "history.ipynb", {}, cwd=tmp_path)  # defaults only

    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "History report: fresh" in outputs  # on its own, it has its title and summary
    assert "none: observed only" in outputs
    assert "single snapshot" in outputs
    assert "Traceback" not in outputs


def _run_by_hand(path: Path, cwd: Path, **parameters: str) -> list[dict[str, Any]]:
    """Execute a notebook as Jupyter's "Run all" does (errors stop it), with the
    parameters cell edited; returns each code cell's outputs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "".join(f"\n{k} = {v!r}" for k, v in parameters.items())
    client = NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    with contextlib.suppress(CellExecutionError):
        client.execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_a_notebook_without_a_database_says_where_it_looked_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.delenv("ZKDRIFT_DATABASE_URL", raising=False)
    monkeypatch.setenv("ZKDRIFT_HOME", str(home))
    missing = tmp_path / "elsewhere" / "zkdrift.db"

    default = _run_by_hand(NOTEBOOKS / "drift_report.ipynb", tmp_path)
    named = _run_by_hand(NOTEBOOKS / "history.ipynb", tmp_path, database_url=f"sqlite:///{missing}")

    for outputs, looked_for, because in (
        (default, home / "zkdrift.db", "the default, $ZKDRIFT_HOME/zkdrift.db"),
        (named, missing, "named by the notebook's database_url parameter"),
    ):
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert len(errors) == 1  # the first cell that needs the database, then nothing ran
        shown = "\n".join(errors[0]["traceback"])
        assert errors[0]["ename"] == "NotebookSetupError"
        assert shown.startswith(f"No zkdrift database at {looked_for} ({because}")
        assert "set ZKDRIFT_DATABASE_URL" in shown and "database_url in the" in shown
        assert "Traceback" not in shown and "File " not in shown  # the message alone
    assert not home.exists() and not missing.parent.exists()  # nothing created


def test_reporting_on_an_unknown_tree_fails_before_starting_a_kernel(
    sqlite_url: str, tmp_path: Path
) -> None:
    cli_env = _env(ZKDRIFT_DATABASE_URL=sqlite_url, ZKDRIFT_HOME=str(tmp_path))
    app: App = make_app(sqlite_url, tmp_path)
    with pytest.raises(UnknownTreeError, match="unknown tree 'ghost'"):
        render_report(app, "ghost", output=tmp_path / "x.html")
    app.close()

    result = run_cli("report", "ghost", "-o", str(tmp_path / "y.html"), env=cli_env)
    bad_since = run_cli("report", "ghost", "--since", "someday", env=cli_env)

    assert result.exit_code == 1 and "unknown tree 'ghost'" in result.stderr
    assert bad_since.exit_code == 1 and "someday" in bad_since.stderr
    assert not (tmp_path / "y.html").exists()
