"""Engine and sessions from settings; schema upgrades through Alembic."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from zkdrift.errors import DatabaseError

if TYPE_CHECKING:  # alembic is imported only when migrations run (CLI start-up time)
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration. Checking a database against it needs no Alembic import,
# which keeps every command's start-up fast; a test keeps it equal to Alembic's head.
SCHEMA_HEAD = "0007"


# Query parameters that carry credentials (pymysql's ?password=, ssl_key passwords,
# tokens): masked like the password in the URL's user part.
_SENSITIVE_QUERY = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)


def _secret_query(parsed: URL) -> dict[str, str | tuple[str, ...]]:
    return {k: v for k, v in parsed.query.items() if _SENSITIVE_QUERY.search(k)}


def safe_url(url: str | URL) -> str:
    """The URL with its password, and any credential in its query, masked: the only
    form that may be logged or shown."""
    parsed = make_url(url)
    masked = {k: "redacted" for k in _secret_query(parsed)}
    if masked:
        parsed = parsed.update_query_dict(masked)
    return parsed.render_as_string(hide_password=True)


def url_secrets(url: str | URL) -> list[str]:
    """Every credential a database URL holds (its password and sensitive query
    values), longest first, for scrubbing text that may have echoed one."""
    parsed = make_url(url)
    found = [parsed.password] if parsed.password else []
    for value in _secret_query(parsed).values():
        found.extend([value] if isinstance(value, str) else value)
    return sorted({str(v) for v in found if v}, key=len, reverse=True)


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names; None for other databases, in-memory SQLite,
    ``file:`` URIs and URLs that do not parse (opening them says what is wrong)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # The URL is not shown: it may hold a password we cannot tell apart.
        raise DatabaseError(f"invalid database URL: {exc}") from None
    # hide_parameters: bound values (blobs hold znode data, secrets included)
    # stay out of SQL logging and out of the text of database errors.
    # SQL logging goes through the 'sqlalchemy.engine' logger and whatever
    # handlers the entry point set up (echo=True would add a second handler).
    if echo:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            directory = Path(parsed.database).expanduser().parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"cannot create the directory {directory} for SQLite database "
                    f"{safe_url(parsed)}: {exc.strerror or exc}"
                ) from None
        if "timeout" not in parsed.query:
            # How long a writer waits for another one (sqlite:///F?timeout=S says otherwise).
            kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = 1800
        # Each statement sees what is committed (PostgreSQL's default): a writer
        # that waited for a tree's lock then reads what the writer before it wrote.
        kwargs["isolation_level"] = "READ COMMITTED"
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        # Whatever the server's default, talk utf8mb4: paths are Unicode.
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise DatabaseError(f"unusable database URL {safe_url(parsed)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``: the only way zkdrift's tables are made."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


class Database:
    """An engine plus a session factory; one per process entry point."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        return safe_url(self.url)

    def upgrade(self) -> None:
        with self.reaching():
            upgrade(self.engine)

    def current_revision(self) -> str | None:
        """The revision Alembic finds stamped in the database (None when empty)."""
        with self.reaching():
            return current_revision(self.engine)

    @contextmanager
    def reaching(self) -> Iterator[None]:
        """Turn a database that cannot be reached or used into a clear :class:`DatabaseError`."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot reach database {self.safe_url}: {getattr(exc, 'orig', None) or exc}"
            ) from exc

    def schema_revision(self) -> str | None:
        """The revision stamped in the database (None for an empty database)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def ensure_schema(self, *, upgrade: bool = False) -> None:
        """Fail with a clear message when the schema is not at head (or upgrade it)."""
        with self.reaching():
            current = self.schema_revision()
        head = SCHEMA_HEAD
        if current != head and upgrade:
            self.upgrade()
        elif current != head:
            raise DatabaseError(
                f"database {self.safe_url} schema is at {current or 'nothing'}, "
                f"expected {head}; run 'zkdrift db upgrade'"
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
