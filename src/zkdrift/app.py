"""The application context shared by the CLI, the flows and the notebooks.

Built once at an entry point from :class:`~zkdrift.settings.Settings`; opens
the database lazily, so commands that need no database never touch it.
"""

from __future__ import annotations

import getpass
import os
import secrets
from dataclasses import dataclass, field

from zkdrift.errors import InvalidInputError
from zkdrift.policy import TlsSettings
from zkdrift.redact import Redactor
from zkdrift.scope import Scope
from zkdrift.settings import Settings
from zkdrift.store.engine import Database
from zkdrift.store.models import Tree
from zkdrift.zk.client import TlsConfig, ZkTarget
from zkdrift.zk.lock import lock_path

DIGEST_KEY_FILE = "digest.key"


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "unknown"


@dataclass
class App:
    settings: Settings
    _db: Database | None = field(default=None, repr=False)
    _redactor: Redactor | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        if self._db is None:
            db = Database(self.settings.database_url_value, echo=self.settings.log_sql)
            # The embedded SQLite default creates and upgrades its own schema;
            # server databases are upgraded explicitly with 'zkdrift db upgrade'.
            db.ensure_schema(upgrade=db.engine.dialect.name == "sqlite")
            self._db = db
        return self._db

    def actor(self, explicit: str | None = None) -> str:
        """Who is acting, for revisions and the audit: ``explicit``, else
        ``ZKDRIFT_AUTHOR``, else the OS user."""
        return explicit or self.settings.author or os_user()

    def target(self, tree: Tree) -> ZkTarget:
        """How to reach ``tree``'s ZooKeeper, with its credentials and TLS."""
        return self.target_for(
            tree.hosts, tree_name=tree.name, auth_env=tree.auth_env, tls=tree.policy.tls
        )

    def target_for(
        self,
        hosts: str,
        *,
        tree_name: str | None = None,
        auth_env: str | None = None,
        tls: TlsSettings | None = None,
    ) -> ZkTarget:
        """A connection to ``hosts`` with the credentials a tree (or the default) uses."""
        return ZkTarget(
            hosts=hosts,
            auth=self._auth(tree_name, auth_env),
            connect_timeout=self.settings.zk_connect_timeout,
            session_timeout=self.settings.zk_session_timeout,
            tls=None if tls is None else self._tls(tree_name, tls),
        )

    def _tls(self, tree_name: str | None, tls: TlsSettings) -> TlsConfig:
        """A tree's TLS files, else the environment's (ZKDRIFT_ZK_TLS_*); the key's
        password from the variable the tree names, else ZKDRIFT_ZK_TLS_KEY_PASSWORD."""
        settings = self.settings
        password: str | None = None
        if tls.key_password_env:
            password = os.environ.get(tls.key_password_env)
            if not password:
                who = f"tree {tree_name!r}" if tree_name else "this tree"
                raise InvalidInputError(
                    f"{who} takes its TLS key password from ${tls.key_password_env},"
                    " which is not set"
                )
        elif settings.zk_tls_key_password is not None:
            password = settings.zk_tls_key_password.get_secret_value()
        return TlsConfig(
            ca=tls.ca or settings.zk_tls_ca,
            certfile=tls.cert or settings.zk_tls_cert,
            keyfile=tls.key or settings.zk_tls_key,
            key_password=password,
            verify=tls.verify,
        )

    def _auth(self, tree_name: str | None, auth_env: str | None) -> str | None:
        if auth_env:
            value = os.environ.get(auth_env)
            if not value:
                who = f"tree {tree_name!r}" if tree_name else "this tree"
                raise InvalidInputError(
                    f"{who} takes its ZooKeeper auth from ${auth_env}, which is not set"
                )
            return value
        return self.settings.zk_auth.get_secret_value() if self.settings.zk_auth else None

    def redactor(self) -> Redactor:
        """How values are shown to people: secret paths as placeholders, their digests
        keyed with this installation's key."""
        if self._redactor is None:
            self._redactor = Redactor(self.settings.secret_globs, key=self.digest_key())
        return self._redactor

    def digest_key(self) -> bytes:
        """``ZKDRIFT_DIGEST_KEY``, else the key file in ``ZKDRIFT_HOME`` (made on first
        use, readable by its owner only). Never stored in the database."""
        if self.settings.digest_key is not None:
            return self.settings.digest_key.get_secret_value().encode("utf-8")
        path = self.settings.home / DIGEST_KEY_FILE
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read the digest key {path}: {exc}") from None
        key = secrets.token_bytes(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it a moment ago
            return bytes.fromhex(path.read_text().strip())
        except OSError:
            # A read-only home: a key for this process only (digests still never leak).
            return key
        with os.fdopen(fd, "w") as out:
            out.write(key.hex() + "\n")
        return key

    def scope(self, tree: Tree) -> Scope:
        """What zkdrift manages of ``tree``: its lock root is never part of it."""
        return tree.scope(self.settings.lock_root)

    def lock_path(self, tree: Tree) -> str:
        return lock_path(self.settings.lock_root, tree.name)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
