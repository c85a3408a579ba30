"""Database trouble is a clear error that never shows a stored value or a password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from tests.support.db import make_app
from zkdrift.errors import DatabaseError
from zkdrift.model import digest
from zkdrift.store.engine import Database, make_engine
from zkdrift.store.models import Blob

SECRET = b"blob-held-s3cret-value"


def test_sql_logging_and_database_errors_never_show_bound_values(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(db_url, tmp_path, log_sql=True)
    row = {"digest": digest(SECRET), "size": len(SECRET), "data": SECRET}
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            with app.db.session() as session:
                session.add(Blob(**row))
            with pytest.raises(IntegrityError) as caught, app.db.session() as session:
                session.add(Blob(**row))  # the same digest again: a primary-key violation
    finally:
        app.close()
    assert "INSERT INTO blobs" in caplog.text  # SQL logging was on
    for text in (caplog.text, str(caught.value)):
        assert SECRET.decode() not in text
        assert repr(SECRET) not in text


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "invalid database URL"),
        ("nosuchdialect://user:pw@host/db", "unusable database URL"),
        ("mysql+pymysql://user:pw@host:port/db", "invalid database URL"),
        ("sqlite:////proc/zkdrift-no-such-dir/zkdrift.db", "cannot create the directory"),
    ],
)
def test_unusable_database_urls_are_clear_errors_without_the_password(
    url: str, problem: str
) -> None:
    with pytest.raises(DatabaseError, match=problem) as caught:
        make_engine(url)
    assert ":pw@" not in str(caught.value)


def test_unreachable_database_is_a_clear_error_for_upgrade_and_current() -> None:
    db = Database("mysql+pymysql://root:hunter2pw@127.0.0.1:1/x")
    try:
        for step in (db.upgrade, db.current_revision, db.ensure_schema):
            with pytest.raises(DatabaseError, match=r"cannot reach database .*root:\*\*\*@") as e:
                step()
            assert "hunter2pw" not in str(e.value)
    finally:
        db.dispose()
