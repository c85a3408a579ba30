"""Prefect events from the watcher: what changed in a tree, and when it drifts.

- ``zkdrift.znode.changed``: one per coalesced batch of changes, with counts
  and the paths (at most a hundred); never values.
- ``zkdrift.tree.drifted`` / ``zkdrift.tree.in-sync``: when the tree's drift
  state changes, with the counts of the check.

The tree is the event's resource, ``zkdrift.tree.<name>``: the id a
deployment trigger matches (see :func:`drift_trigger`), so a tree whose
policy says ``reconcile_on_drift`` gets its reconcile deployment run when it
drifts. A reconcile that makes live equal desired ends in ``in-sync``, never
in another ``drifted``.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import DeploymentEventTrigger, emit_event
from prefect.events.worker import EventsWorker
from prefect.settings import PREFECT_API_URL

from zkdrift.watch import ChangeSummary, DriftCounts

log = logging.getLogger(__name__)

CHANGED = "zkdrift.znode.changed"
DRIFTED = "zkdrift.tree.drifted"
IN_SYNC = "zkdrift.tree.in-sync"


def resource_id(tree: str) -> str:
    return f"zkdrift.tree.{tree}"


def tree_resource(tree: str) -> dict[str, str]:
    return {
        "prefect.resource.id": resource_id(tree),
        "prefect.resource.name": tree,
        "prefect.resource.role": "zookeeper-tree",
    }


def _counts(counts: DriftCounts) -> dict[str, Any]:
    return {
        "differences": counts.total,
        "drift": counts.drift,
        "pending": counts.pending,
        "conflict": counts.conflict,
        "in_sync": counts.in_sync,
    }


def configured() -> bool:
    """True when a Prefect API is configured: without one, events are not sent (Prefect
    would otherwise start a temporary server of its own)."""
    return bool(PREFECT_API_URL.value())


class PrefectEvents:
    """An :class:`~zkdrift.watch.EventSink` that emits Prefect events."""

    def changed(self, tree: str, summary: ChangeSummary, counts: DriftCounts) -> None:
        self._emit(
            CHANGED,
            tree,
            {
                "events": summary.events,
                "created": summary.created,
                "changed": summary.changed,
                "deleted": summary.deleted,
                "paths": list(summary.paths),
                **_counts(counts),
            },
        )

    def drift_state(self, tree: str, counts: DriftCounts) -> None:
        self._emit(IN_SYNC if counts.in_sync else DRIFTED, tree, _counts(counts))

    def _emit(self, event: str, tree: str, payload: dict[str, Any]) -> None:
        try:
            emit_event(event=event, resource=tree_resource(tree), payload=payload)
        except Exception:  # events are news: a failure to send one never stops the watcher
            log.warning("could not send the Prefect event %s for tree %s", event, tree)

    def close(self) -> None:
        try:
            EventsWorker.drain_all(timeout=10)
        except Exception:
            log.debug("could not flush the Prefect events", exc_info=True)


def drift_trigger(tree: str, *, apply: bool) -> DeploymentEventTrigger:
    """Run a deployment when tree ``tree`` drifts (with ``apply`` as its parameter)."""
    return DeploymentEventTrigger(
        name=f"zkdrift: reconcile {tree} when it drifts",
        description=f"Runs the reconcile deployment of tree {tree} when its watcher sees drift.",
        expect={DRIFTED},
        match={"prefect.resource.id": resource_id(tree)},
        parameters={"apply": apply},
    )


def yaml_trigger(tree: str, *, apply: bool) -> dict[str, Any]:
    """:func:`drift_trigger` as a ``triggers:`` entry of prefect.yaml."""
    return {
        "type": "event",
        "name": f"zkdrift: reconcile {tree} when it drifts",
        "enabled": True,
        "match": {"prefect.resource.id": resource_id(tree)},
        "expect": [DRIFTED],
        "parameters": {"apply": apply},
    }
