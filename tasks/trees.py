"""Which trees a flow works on: read from the registry in the database."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task

from zkdrift import trees as trees_lib
from zkdrift.errors import InvalidInputError, UnknownTreeError
from zkdrift.tasks.results import TreeRef
from zkdrift.tasks.retry import retry_options
from zkdrift.tasks.runtime import open_app, run_logger


def _source_text(tree: trees_lib.TreeInfo) -> str | None:
    source = tree.policy.desired_source
    return None if source is None else source.describe()


@task(name="registered-trees", task_run_name="registered-trees", **retry_options())
def registered_trees(names: Sequence[str] = ()) -> tuple[TreeRef, ...]:
    """The named trees (all registered trees when ``names`` is empty), in name order."""
    with open_app() as app:
        trees = trees_lib.list_trees(app)
        database = app.db.safe_url
    known = {tree.name: tree for tree in trees}
    wanted = list(dict.fromkeys(names)) if names else sorted(known)
    missing = [name for name in wanted if name not in known]
    if missing:
        raise UnknownTreeError(missing[0], sorted(known))
    if not wanted:
        raise InvalidInputError(
            f"no trees are registered in {database}; register one with 'zkdrift tree add'"
        )
    refs = tuple(
        TreeRef(
            name=name,
            applies_by_policy=known[name].policy.applies,
            hosts=known[name].hosts,
            root=known[name].root,
            desired_source=_source_text(known[name]),
        )
        for name in wanted
    )
    run_logger().info("database %s: %d tree(s): %s", database, len(refs), ", ".join(wanted))
    return refs
