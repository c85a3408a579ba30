"""MySQL/MariaDB: names and paths compare byte for byte, whatever the server's default
character set, with ``mysql+pymysql://`` and ``mariadb+pymysql://`` URLs alike."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from tests.support.db import MARIADB_ADMIN_URL
from zkdrift.model import TreeState
from zkdrift.store import desired as desired_store
from zkdrift.store import trees as tree_store
from zkdrift.store.engine import Database, make_engine, upgrade
from zkdrift.store.models import Tree

CAFE_NFC = unicodedata.normalize("NFC", "café")
CAFE_NFD = unicodedata.normalize("NFD", "café")
PATHS = ("/a", "/A", f"/{CAFE_NFC}", f"/{CAFE_NFD}", "/日本/設定", "/emoji/🔑", "/ünï cødé")


@pytest.fixture
def latin1_database() -> Iterator[str]:
    """A fresh database on the suite's MariaDB whose default character set is latin1."""
    admin = make_engine(MARIADB_ADMIN_URL)
    name = f"zkdrift_latin1_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET latin1 COLLATE latin1_swedish_ci"))
    try:
        yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.mark.parametrize("scheme", ["mysql+pymysql", "mariadb+pymysql"])
def test_unicode_paths_and_names_that_differ_only_in_case_or_form_stay_distinct(
    latin1_database: str, scheme: str
) -> None:
    url = scheme + latin1_database[latin1_database.index("://") :]
    db = Database(url)
    try:
        db.upgrade()
        with db.session() as session:
            for name in ("App", "app", CAFE_NFC, CAFE_NFD):
                tree_store.add_tree(session, name=name, hosts="zk:2181", root="/")
        with db.session() as session:
            tree = tree_store.get_tree(session, "app")
            state = TreeState.of("/", {p: p.encode() for p in PATHS})
            desired_store.write_revision(
                session, tree, state, author="t", message="", source="test"
            )
        with db.session() as session:
            names = sorted(session.scalars(select(Tree.name)))
            loaded = desired_store.load_desired(session, tree_store.get_tree(session, "app"))
    finally:
        db.dispose()

    assert names == sorted(["App", "app", CAFE_NFC, CAFE_NFD])
    assert {p: n.data for p, n in loaded.nodes.items()} == {p: p.encode() for p in PATHS}


def test_the_migration_converts_existing_tables_and_keeps_their_rows(
    latin1_database: str,
) -> None:
    engine = make_engine(latin1_database)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO trees (name, hosts, root, excludes, includes, capture_acl,"
                    " options, created_at, updated_at) VALUES ('Café', 'zk:2181', '/café',"
                    " '[]', '[]', 0, '{}', NOW(), NOW())"
                )
            )
        upgrade(engine, "head")
        with engine.connect() as conn:
            collations = set(
                conn.scalars(
                    text(
                        "SELECT DISTINCT table_collation FROM information_schema.tables"
                        " WHERE table_schema = DATABASE()"
                    )
                )
            )
            row = conn.execute(text("SELECT name, root FROM trees")).one()
            conn.execute(
                text(
                    "INSERT INTO trees (name, hosts, root, excludes, includes, capture_acl,"
                    " options, created_at, updated_at) VALUES ('café', 'zk:2181', '/日本',"
                    " '[]', '[]', 0, '{}', NOW(), NOW())"
                )
            )
            conn.commit()
            names = sorted(conn.scalars(text("SELECT name FROM trees")))
    finally:
        engine.dispose()

    assert collations == {"utf8mb4_bin"}
    assert tuple(row) == ("Café", "/café")
    assert names == ["Café", "café"]
