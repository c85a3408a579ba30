"""Prefect tasks: each one I/O step against ZooKeeper, the database or the Prefect API.

Tasks take and return plain, picklable values (tree names, ids, frozen
dataclasses). Each builds its own :class:`~zkdrift.app.App` from
:class:`~zkdrift.settings.Settings`, so no connection, session or engine ever
crosses a task boundary. Retries live here and only here, and only for
errors that are worth retrying (see :mod:`zkdrift.tasks.retry`).
"""
