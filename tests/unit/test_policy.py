"""A tree's policy: parsed and validated once, with the cron parser Prefect schedules with."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.client.schemas.schedules import CronSchedule

from zkdrift.policy import (
    MAX_OP_BYTES,
    InvalidPolicyError,
    ReconcileMode,
    Schedule,
    TreePolicy,
    check_cron,
)


def test_an_empty_policy_is_the_safe_default() -> None:
    policy = TreePolicy.from_options("t", {})
    assert policy.schedule is None
    assert policy.reconcile is ReconcileMode.PLAN and not policy.applies
    assert policy.protected == ()
    assert policy.max_delete_fraction == 0.1
    assert policy.max_op_bytes == MAX_OP_BYTES
    assert policy.to_options() == {}


def test_a_stored_policy_round_trips_through_its_json_form() -> None:
    options = {
        "schedule": {"cron": "*/15 * * * *", "timezone": "Europe/Berlin"},
        "reconcile": "apply",
        "protected": ["/app/kafka/**"],
        "max_delete_fraction": 0.25,
    }
    policy = TreePolicy.from_options("t", options)
    assert policy.applies
    assert policy.schedule == Schedule(cron="*/15 * * * *", timezone="Europe/Berlin")
    assert TreePolicy.from_options("t", policy.to_options()) == policy


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"schedule": {"interval": 0}}, "schedule.interval"),
        ({"schedule": {"interval": "5m"}}, "schedule.interval"),
        ({"schedule": {"cron": "* * * * *", "interval": 60}}, "schedule"),
        ({"schedule": {"every": 5}}, "schedule.every"),
        ({"schedule": 5}, "schedule"),
        ({"schedule": {"cron": "every tuesday"}}, "schedule.cron"),
        ({"schedule": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone"),
        ({"reconcile": "sometimes"}, "reconcile"),
        ({"max_delete_fraction": 1.5}, "max_delete_fraction"),
        ({"max_op_bytes": 0}, "max_op_bytes"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_an_invalid_policy_names_the_tree_and_the_field(options: Any, field: str) -> None:
    with pytest.raises(InvalidPolicyError) as caught:
        TreePolicy.from_options("billing", options)
    message = str(caught.value)
    assert message.startswith("tree 'billing' has an invalid policy: ")
    assert f"{field}:" in message


@pytest.mark.parametrize(
    "line",
    [
        "*/5 * * * *",
        "0 9 * * 1-5",
        "0 0 1 * *",
        "15,45 */2 * * *",
        "0 0 * * MON",
        "0 9 * * 1#2",
        "0 0 L * *",
        "every tuesday",
        "* * *",
        "61 * * * *",
        "H * * * *",
        "R * * * *",
        "0 0 32 * *",
    ],
)
def test_cron_lines_are_accepted_exactly_when_prefect_accepts_them(line: str) -> None:
    try:
        CronSchedule(cron=line)
        prefect_accepts = True
    except ValueError:
        prefect_accepts = False
    try:
        check_cron(line)
        we_accept = True
    except ValueError:
        we_accept = False
    assert we_accept == prefect_accepts


def test_changing_a_policy_validates_the_result_and_can_remove_the_schedule() -> None:
    policy = TreePolicy.from_options("t", {"schedule": {"interval": 300}, "reconcile": "apply"})

    unscheduled = policy.changed("t", schedule=None)
    assert unscheduled.schedule is None and unscheduled.applies

    with pytest.raises(InvalidPolicyError, match=r"tree 't': schedule\.interval"):
        policy.changed("t", schedule={"interval": 5})
    assert policy.schedule == Schedule(interval=300)  # unchanged: policies are frozen


def test_schedules_describe_themselves_for_people() -> None:
    assert Schedule(cron="0 9 * * *").describe() == "cron '0 9 * * *'"
    assert Schedule(interval=300, timezone="UTC").describe() == "every 300s (UTC)"
