"""Runtime settings, read from ``ZKDRIFT_*`` environment variables (and ``.env``).

Built once at an entry point (CLI, flow, notebook) and passed down; nothing in
the library reads the environment on its own or connects at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "zkdrift"


class Settings(BaseSettings):
    """zkdrift settings. Every field can be set as ``ZKDRIFT_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="ZKDRIFT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        default_factory=default_home,
        description="Directory for the default SQLite database and rendered reports.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file in `home`. "
        "Use mysql+pymysql://user:pass@host/db for MySQL/MariaDB.",
    )
    zk_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a ZooKeeper session."
    )
    zk_session_timeout: float = Field(default=30.0, gt=0)
    zk_auth: SecretStr | None = Field(
        default=None,
        description="Default ZooKeeper auth 'scheme:credential' (e.g. digest:user:pass).",
    )
    zk_tls_ca: str | None = Field(
        default=None, description="CA bundle for trees that connect over TLS (tree set --tls)."
    )
    zk_tls_cert: str | None = Field(default=None, description="Client certificate for TLS.")
    zk_tls_key: str | None = Field(default=None, description="Client private key for TLS.")
    zk_tls_key_password: SecretStr | None = Field(
        default=None, description="Password of the TLS client key, when it has one."
    )
    digest_key: SecretStr | None = Field(
        default=None,
        description="Key for the digests of secret values shown to people (any string);"
        " default: a random key kept in ZKDRIFT_HOME/digest.key.",
    )
    secret_globs: list[str] = Field(
        default_factory=list, description="Extra path globs whose values are redacted."
    )
    author: str | None = Field(
        default=None,
        description="Author recorded with desired-state changes (default: the OS user).",
    )
    lock_root: str = Field(
        default="/zkdrift/locks", description="Where tree locks live in ZooKeeper."
    )
    git_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds one git command may take when syncing a desired source.",
    )
    reports_port: int = Field(
        default=8765,
        ge=0,
        le=65535,
        description="Port on which 'zkdrift serve' serves the HTML reports over HTTP (0: off).",
    )
    reports_bind: str = Field(
        default="127.0.0.1",
        description="Address the report server listens on (0.0.0.0 inside a container).",
    )
    reports_url: str | None = Field(
        default=None,
        description="Base URL of the reports in links (Prefect artifacts, run summaries);"
        " default: http://localhost:<reports_port>/ as 'zkdrift serve' serves them.",
    )
    serve_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often 'zkdrift serve' re-reads the registered trees.",
    )
    watch_debounce_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How long a watcher collects changes before it updates a tree's drift.",
    )
    watch_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a watcher re-reads the registered trees and their settings.",
    )
    watch_fallback_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a watcher reads a tree whose servers have no addWatch"
        " (ZooKeeper older than 3.6) in full.",
    )
    log_sql: bool = False

    @property
    def reports_base_url(self) -> str:
        """Where people open the reports: ``ZKDRIFT_REPORTS_URL``, with a trailing slash."""
        base = self.reports_url or f"http://localhost:{self.reports_port or 8765}/"
        return base if base.endswith("/") else base + "/"

    @property
    def database_url_value(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.home / 'zkdrift.db'}"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"
