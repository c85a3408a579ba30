"""A real Prefect server for the flow and deployment tests, started once per session.

``prefect_test_harness`` runs Prefect's API server in a subprocess on a free
port with a throwaway SQLite database, and points this process at it. Tests
that run the ``zkdrift`` command in a subprocess pass its URL on through
``PREFECT_API_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import get_client
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from tests.support.db import make_app
from zkdrift.app import App


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The API URL of a Prefect server that lives for the whole session."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no telemetry from tests
    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url, "the Prefect test harness did not set PREFECT_API_URL"
        yield str(url)


def _flow_app(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> Iterator[App]:
    # Tasks build their App from the environment, as they do in production.
    for key in [k for k in os.environ if k.startswith("ZKDRIFT_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("ZKDRIFT_DATABASE_URL", url)
    monkeypatch.setenv("ZKDRIFT_HOME", str(home))
    monkeypatch.setenv("ZKDRIFT_ZK_CONNECT_TIMEOUT", "5")
    application = make_app(url, home)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def no_deployments_left_behind(prefect_api: str) -> Iterator[None]:
    """Later tests must not find this test's deployments (and route runs to a stopped
    runner): every deployment on the test server is deleted afterwards."""
    yield
    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)


@pytest.fixture
def flow_app(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> Iterator[App]:
    """An App on a fresh SQLite database, with the flows' environment pointing at it."""
    yield from _flow_app(sqlite_url, tmp_path, monkeypatch, prefect_api)


@pytest.fixture
def flow_app_any_db(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> Iterator[App]:
    """As ``flow_app``, on SQLite and on MariaDB."""
    yield from _flow_app(db_url, tmp_path, monkeypatch, prefect_api)


@pytest.fixture
def prefect_cli_env(flow_app: App, prefect_api: str, tmp_path: Path) -> dict[str, str]:
    """Environment for ``zkdrift run``/``serve`` subprocesses: flow_app's database, the
    test Prefect server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        COLUMNS="200",
        PREFECT_API_URL=prefect_api,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_EPHEMERAL_ENABLED="false",
    )
    return env
