"""Real services for the suite: one ZooKeeper per session (and a three-node
ensemble for the fault tests), MariaDB and SQLite.

Each test gets its own ZooKeeper chroot (a uuid path) and its own database
state, so tests never see each other's data. A service the suite needs that
is absent makes the fixtures fail loudly; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from sqlalchemy import text

from tests.support.db import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, make_app, truncate
from tests.support.ensemble import Ensemble
from tests.support.secure import SaslServer, TlsServer, start_sasl_server, start_tls_server
from tests.support.zk import SUPER_AUTH, connected, delete_tree, start_server
from zkdrift.app import App
from zkdrift.devtools.zkserver import ZooKeeperServer
from zkdrift.store.engine import Database, make_engine

BACKENDS = ("sqlite", "mariadb")


@pytest.fixture(scope="session")
def zk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One real ZooKeeper server for the whole session, on a free loopback port."""
    server = start_server(tmp_path_factory.mktemp("zookeeper"))
    try:
        yield server
    finally:
        server.kill()  # throwaway data: no need for a graceful shutdown


@pytest.fixture
def killable_zk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """A ZooKeeper of this test's own, which the test may kill and start again."""
    server = start_server(tmp_path_factory.mktemp("own-zookeeper"))
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def zk_chroot(zk_server: ZooKeeperServer) -> Iterator[str]:
    """A fresh chroot for this test; returns the connect string that lands in it."""
    chroot = f"/zkdrift-test-{uuid.uuid4().hex[:12]}"
    # As the superuser: tests lock nodes with ACLs, and the chroot must still go.
    with connected(zk_server.connect_string, auth_data=[SUPER_AUTH]) as admin:
        admin.create(chroot)
        try:
            yield f"{zk_server.connect_string}{chroot}"
        finally:
            delete_tree(admin, chroot)


@pytest.fixture
def zk(zk_chroot: str) -> Iterator[KazooClient]:
    """A kazoo client inside this test's chroot."""
    with connected(zk_chroot) as client:
        yield client


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A throwaway MariaDB database for this test run, migrated once."""
    admin = make_engine(MARIADB_ADMIN_URL)
    name = f"zkdrift_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    except Exception as exc:  # the suite needs MariaDB: fail loudly, never skip
        pytest.fail(f"MariaDB is required at {MARIADB_ADMIN_URL}: {exc}", pytrace=False)
    url = MARIADB_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    db.upgrade()
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to head once per session; tests get copies
    (a copy takes a millisecond, running every migration most of a second)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "zkdrift.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    assert not path.with_name("zkdrift.db-wal").exists()  # everything is in the one file
    return path


def fresh_sqlite(template: Path, tmp_path: Path) -> str:
    target = tmp_path / "zkdrift.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the run's MariaDB database."""
    if request.param == "sqlite":
        yield fresh_sqlite(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        url = request.getfixturevalue("mariadb_url")
        truncate(url)
        yield url
        truncate(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, empty (migrate it yourself)."""
    name = f"zkdrift_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # the suite needs PostgreSQL: fail loudly, never skip
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL}: {exc}", pytrace=False)
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return fresh_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    """The zkdrift application against this test's database (SQLite and MariaDB)."""
    application = make_app(db_url, tmp_path / "home")
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``zkdrift`` command against this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKDRIFT_")}
    env.update(
        ZKDRIFT_DATABASE_URL=db_url,
        ZKDRIFT_HOME=str(tmp_path / "home"),
        ZKDRIFT_ZK_CONNECT_TIMEOUT="5",
        COLUMNS="200",
    )
    return env


@pytest.fixture(scope="session")
def tls_zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A ZooKeeper that speaks only mutual TLS on its secure port (certificates made here)."""
    server = start_tls_server(tmp_path_factory.mktemp("tls-zookeeper"))
    try:
        yield server
    finally:
        server.server.kill()


@pytest.fixture(scope="session")
def sasl_zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslServer]:
    """A ZooKeeper that takes SASL DIGEST-MD5 logins (a JAAS file made here)."""
    server = start_sasl_server(tmp_path_factory.mktemp("sasl-zookeeper"))
    try:
        yield server
    finally:
        server.server.kill()


@pytest.fixture(scope="session")
def zk_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    """A real three-node ZooKeeper ensemble on loopback, started once per session.

    Tests kill and restart its members; ``ensemble_chroot`` brings every member
    back after each test.
    """
    ensemble = Ensemble.create(tmp_path_factory.mktemp("ensemble"))
    try:
        ensemble.start()
        yield ensemble
    finally:
        ensemble.kill_all()


@pytest.fixture
def ensemble_chroot(zk_ensemble: Ensemble) -> Iterator[str]:
    """A fresh chroot on the ensemble for this test (the path, e.g. '/zkdrift-test-...').

    Whatever members the test killed are started again afterwards, and the
    chroot is deleted once the quorum is whole.
    """
    zk_ensemble.restore()
    chroot = f"/zkdrift-test-{uuid.uuid4().hex[:12]}"
    hosts = zk_ensemble.hosts()
    with connected(hosts, auth_data=[SUPER_AUTH]) as admin:
        admin.create(chroot)
    try:
        yield chroot
    finally:
        zk_ensemble.restore()
        with connected(hosts, auth_data=[SUPER_AUTH]) as admin:
            delete_tree(admin, chroot)
