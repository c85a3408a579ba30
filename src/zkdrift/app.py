"""The application context shared by the CLI, the flows and the notebooks.

Built once at an entry point from :class:`~zkdrift.settings.Settings`; opens
the database lazily, so commands that need no database never touch it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from zkdrift.errors import InvalidInputError
from zkdrift.settings import Settings
from zkdrift.store.engine import Database
from zkdrift.store.models import Tree
from zkdrift.zk.client import ZkTarget


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

    def target(self, tree: Tree) -> ZkTarget:
        return ZkTarget(
            hosts=tree.hosts,
            auth=self.auth_for(tree),
            connect_timeout=self.settings.zk_connect_timeout,
            session_timeout=self.settings.zk_session_timeout,
        )

    def auth_for(self, tree: Tree) -> str | None:
        if tree.auth_env:
            value = os.environ.get(tree.auth_env)
            if not value:
                raise InvalidInputError(
                    f"tree {tree.name!r} takes its ZooKeeper auth from ${tree.auth_env}, "
                    "which is not set"
                )
            return value
        return self.settings.zk_auth.get_secret_value() if self.settings.zk_auth else None

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
            self._db = None
