"""The application context shared by the CLI, the flows and the notebooks.

Built once at an entry point from :class:`~zkdrift.settings.Settings`; opens
the database lazily, so commands that need no database never touch it.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

from zkdrift.errors import InvalidInputError
from zkdrift.scope import Scope
from zkdrift.settings import Settings
from zkdrift.store.engine import Database
from zkdrift.store.models import Tree
from zkdrift.zk.client import ZkTarget
from zkdrift.zk.lock import lock_path


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "unknown"


@dataclass
class App:
    settings: Settings
    _db: Database | None = field(default=None, repr=False)

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
        """How to reach ``tree``'s ZooKeeper, with its credentials."""
        return self.target_for(tree.hosts, tree_name=tree.name, auth_env=tree.auth_env)

    def target_for(
        self, hosts: str, *, tree_name: str | None = None, auth_env: str | None = None
    ) -> ZkTarget:
        """A connection to ``hosts`` with the credentials a tree (or the default) uses."""
        return ZkTarget(
            hosts=hosts,
            auth=self._auth(tree_name, auth_env),
            connect_timeout=self.settings.zk_connect_timeout,
            session_timeout=self.settings.zk_session_timeout,
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

    def scope(self, tree: Tree) -> Scope:
        """What zkdrift manages of ``tree``: its lock root is never part of it."""
        return tree.scope(self.settings.lock_root)

    def lock_path(self, tree: Tree) -> str:
        return lock_path(self.settings.lock_root, tree.name)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
