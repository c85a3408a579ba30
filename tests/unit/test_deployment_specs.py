"""Which Prefect deployments the registered trees get (no server involved)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prefect.utilities.importtools import import_object

from zkdrift.errors import InvalidInputError
from zkdrift.flows.deployments import FLOWS, TREE_FLOWS, deployment_specs
from zkdrift.policy import TreePolicy
from zkdrift.trees import TreeInfo


def tree(name: str, **policy: object) -> TreeInfo:
    return TreeInfo(
        name=name,
        hosts="zk:2181",
        root="/",
        excludes=(),
        includes=(),
        capture_acl=False,
        auth_env=None,
        policy=TreePolicy.model_validate(policy),
        created_at=dt.datetime(2026, 1, 1),
    )


def test_every_tree_gets_a_scheduled_pipeline_and_a_one_at_a_time_reconcile() -> None:
    specs = deployment_specs([tree("search"), tree("billing", schedule={"cron": "*/5 * * * *"})])

    names = [(s.flow, s.name) for s in specs]
    assert names[:4] == [(k, "all-trees") for k in ("pipeline", "snapshot", "drift", "report")]
    assert names[4:] == [
        ("pipeline", "billing"),
        ("reconcile", "billing"),
        ("pipeline", "search"),
        ("reconcile", "search"),
    ]
    by_name = {(s.flow, s.name): s for s in specs}
    billing = by_name[("pipeline", "billing")]
    assert billing.schedule is not None and billing.schedule.cron == "*/5 * * * *"
    assert billing.per_tree and billing.parameters == {"apply": False}
    assert billing.ref.flow.name == "zkdrift-pipeline"
    assert "tree:billing" in billing.tags
    assert by_name[("pipeline", "search")].schedule is None
    assert by_name[("reconcile", "search")].concurrency_limit == 1
    assert all(s.concurrency_limit is None for s in specs if s.flow != "reconcile")


def test_a_tree_named_like_the_all_trees_deployments_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="clashes with the all-trees deployments"):
        deployment_specs([tree("all-trees")])


def test_a_trees_deployments_take_flat_parameters_and_no_tree_parameter() -> None:
    specs = deployment_specs([tree("auto", reconcile="apply"), tree("manual")])
    per_tree = {(s.flow, s.name): s for s in specs if s.per_tree}

    for spec in per_tree.values():
        schema = spec.ref.flow.parameters.properties
        assert "trees" not in schema and "params" not in schema
        assert schema["apply"]["type"] == "boolean" and schema["apply"]["default"] is False
        assert "write the desired state" in schema["apply"]["description"]
    # The policy decides the default: scheduled runs of "auto" apply, of "manual" plan.
    assert per_tree[("pipeline", "auto")].parameters == {"apply": True}
    assert per_tree[("reconcile", "auto")].parameters == {"apply": True}
    assert per_tree[("pipeline", "manual")].parameters == {"apply": False}


def test_every_entrypoint_loads_its_flow_by_module_path() -> None:
    for ref in [*FLOWS.values(), *TREE_FLOWS.values()]:
        assert ":" not in ref.entrypoint and not ref.entrypoint.endswith(".py")
        assert import_object(ref.entrypoint) is ref.flow


def test_the_all_trees_forms_offer_apply_as_three_named_choices() -> None:
    schema = json.dumps(FLOWS["pipeline"].flow.parameters.model_dump())
    assert '"enum": ["policy", "apply", "dry-run"]' in schema
    assert '"null"' not in schema.split('"apply"', 1)[1].split("}", 1)[0]
    params = FLOWS["pipeline"].params
    assert params is not None
    assert params.model_validate({"apply": None}).model_dump()["apply"] == "policy"
    assert params.model_validate({"apply": True}).model_dump()["apply"] == "apply"


def test_a_tree_that_reconciles_on_drift_gets_an_event_trigger_on_its_reconcile_only() -> None:
    import yaml

    from zkdrift.flows.deployments import _triggers, prefect_yaml

    specs = deployment_specs(
        [
            tree("healed", reconcile="apply", reconcile_on_drift=True),
            tree("dry", reconcile_on_drift=True),
            tree("plain"),
        ]
    )
    by_name = {(s.flow, s.name): s for s in specs}
    assert [k for k, s in by_name.items() if s.on_drift] == [
        ("reconcile", "dry"),
        ("reconcile", "healed"),
    ]
    (trigger,) = _triggers(by_name[("reconcile", "healed")]) or []
    assert trigger.expect == {"zkdrift.tree.drifted"}
    assert trigger.match.model_dump() == {"prefect.resource.id": "zkdrift.tree.healed"}
    assert trigger.parameters == {"apply": True}
    (dry,) = _triggers(by_name[("reconcile", "dry")]) or []
    assert dry.parameters == {"apply": False}  # a dry run unless the policy applies

    declared = {
        (d["entrypoint"], d["name"]): d for d in yaml.safe_load(prefect_yaml(specs))["deployments"]
    }
    entry = declared[("zkdrift.flows.tree.tree_reconcile_flow", "healed")]
    assert entry["triggers"] == [
        {
            "type": "event",
            "name": "zkdrift: reconcile healed when it drifts",
            "enabled": True,
            "match": {"prefect.resource.id": "zkdrift.tree.healed"},
            "expect": ["zkdrift.tree.drifted"],
            "parameters": {"apply": True},
        }
    ]
    assert entry["concurrency_limit"] == 1
    assert "triggers" not in declared[("zkdrift.flows.tree.tree_reconcile_flow", "plain")]
