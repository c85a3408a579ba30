from __future__ import annotations

import itertools

import pytest

from zkdrift.errors import InvalidInputError
from zkdrift.model import Acl, Op, OpKind, Plan, Stat, TreeState, Znode, digest
from zkdrift.paths import InvalidPathError
from zkdrift.plan import (
    ACL_ENTRY_OVERHEAD,
    OP_OVERHEAD,
    acl_sources,
    batch_ops,
    check_guards,
    estimate_op_size,
    looks_sequential,
    make_plan,
)

WORLD = Acl(31, "world", "anyone")
READ_ONLY = Acl(1, "world", "anyone")


# An ACL for the nodes guard tests create: only the operators may read them.
OPS_ONLY = (Acl(31, "digest", "ops:c2VjcmV0"),)


def want(values: dict[str, bytes]) -> dict[str, Znode]:
    return {p: Znode(p, d) for p, d in values.items()}


def have(
    path: str,
    data: bytes = b"",
    *,
    version: int = 0,
    aversion: int = 0,
    owner: int = 0,
    acl: tuple[Acl, ...] | None = None,
) -> Znode:
    return Znode(path, data, Stat(version=version, aversion=aversion, ephemeral_owner=owner), acl)


def live_of(values: dict[str, bytes]) -> dict[str, Znode]:
    return {p: have(p, d, version=3) for p, d in values.items()}


def shape(plan: Plan) -> list[tuple[OpKind, str]]:
    return [(op.kind, op.path) for op in plan.ops]


# -- make_plan: basics --------------------------------------------------------


def test_plan_is_empty_when_live_equals_desired() -> None:
    values = {"/app": b"", "/app/a": b"1"}
    plan = make_plan("t", want(values), live_of(values), root="/app", prune=True)
    assert plan.empty
    assert plan.warnings == ()
    assert plan.tree == "t"


def test_plan_ignores_stat_only_differences() -> None:
    plan = make_plan("t", want({"/a": b"x"}), {"/a": have("/a", b"x", version=42)})
    assert plan.empty


def test_plan_accepts_tree_states() -> None:
    desired = TreeState.of("/app", {"/app": b"", "/app/a": b"1"})
    live = TreeState("/app", {"/app": have("/app")})
    plan = make_plan("t", desired, live, root="/app")
    assert shape(plan) == [(OpKind.CREATE, "/app/a")]


# -- creates -------------------------------------------------------------------


def test_plan_creates_missing_node_with_desired_data_and_no_expected_version() -> None:
    plan = make_plan("t", want({"/a": b"\x00\xffbin"}), {})
    assert plan.ops == (
        Op(OpKind.CREATE, "/a", data=b"\x00\xffbin", after_digest=digest(b"\x00\xffbin")),
    )


def test_plan_creates_node_with_empty_value() -> None:
    (op,) = make_plan("t", want({"/e": b""}), {}).ops
    assert op.kind is OpKind.CREATE
    assert op.data == b""
    assert op.after_digest == digest(b"")
    assert op.before_digest is None


def test_plan_creates_node_with_desired_acl() -> None:
    desired = {"/a": Znode("/a", b"x", acl=(READ_ONLY,))}
    (op,) = make_plan("t", desired, {}).ops
    assert op.acl == (READ_ONLY,)


def test_plan_creates_parents_before_children_by_depth_then_path() -> None:
    desired = want({p: b"" for p in ["/b/c/d", "/a", "/b", "/b/c", "/a/z", "/a b", "/a/y"]})
    plan = make_plan("t", desired, {})
    assert [p for _, p in shape(plan)] == ["/a", "/a b", "/b", "/a/y", "/a/z", "/b/c", "/b/c/d"]
    assert all(k is OpKind.CREATE for k, _ in shape(plan))


def test_plan_creates_missing_intermediate_parents_with_empty_data_and_warns() -> None:
    plan = make_plan("t", want({"/app/x/y/z": b"leaf"}), {"/app": have("/app")}, root="/app")
    assert shape(plan) == [
        (OpKind.CREATE, "/app/x"),
        (OpKind.CREATE, "/app/x/y"),
        (OpKind.CREATE, "/app/x/y/z"),
    ]
    assert plan.ops[0].data == b""
    assert plan.ops[1].data == b""
    assert plan.ops[2].data == b"leaf"
    assert len(plan.warnings) == 1
    assert "2 missing parent nodes" in plan.warnings[0]
    assert "/app/x, /app/x/y" in plan.warnings[0]


def test_plan_does_not_create_parents_that_desired_lists() -> None:
    desired = want({"/a": b"p", "/a/b": b"c"})
    plan = make_plan("t", desired, {})
    assert [op.data for op in plan.ops] == [b"p", b"c"]
    assert plan.warnings == ()


def test_plan_treats_ancestors_of_live_nodes_as_existing() -> None:
    # A reader that leaves out the root must not make the plan create it.
    live = {"/app/a": have("/app/a", b"1")}
    plan = make_plan("t", want({"/app/a": b"1", "/app/b": b"2"}), live, root="/app")
    assert shape(plan) == [(OpKind.CREATE, "/app/b")]
    assert plan.warnings == ()


def test_plan_creates_a_missing_tree_root_but_nothing_above_it() -> None:
    plan = make_plan("t", want({"/srv/app/conf/a": b"1"}), {}, root="/srv/app")
    assert shape(plan) == [
        (OpKind.CREATE, "/srv/app"),
        (OpKind.CREATE, "/srv/app/conf"),
        (OpKind.CREATE, "/srv/app/conf/a"),
    ]
    assert any("tree root /srv/app does not exist live" in w for w in plan.warnings)


def test_plan_never_creates_the_zookeeper_root() -> None:
    plan = make_plan("t", want({"/": b"", "/a": b"1"}), {})
    assert shape(plan) == [(OpKind.CREATE, "/a")]


def test_plan_creates_unicode_paths_and_paths_with_spaces() -> None:
    plan = make_plan("t", want({"/app/ünï cødé": b"1", "/app/日本": b"2"}), {"/app": have("/app")})
    assert {p for _, p in shape(plan)} == {"/app/ünï cødé", "/app/日本"}


def test_plan_warns_that_sequential_nodes_are_created_as_plain_nodes() -> None:
    plan = make_plan("t", want({"/q/item-0000000042": b"x", "/q": b""}), {})
    assert shape(plan) == [(OpKind.CREATE, "/q"), (OpKind.CREATE, "/q/item-0000000042")]
    assert len(plan.warnings) == 1
    assert "sequential" in plan.warnings[0]
    assert "/q/item-0000000042" in plan.warnings[0]


def test_plan_does_not_warn_about_sequential_looking_nodes_that_exist_live() -> None:
    values = {"/q/item-0000000042": b"x"}
    plan = make_plan("t", want({"/q/item-0000000042": b"y"}), live_of(values))
    assert shape(plan) == [(OpKind.SET, "/q/item-0000000042")]
    assert plan.warnings == ()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/q/item-0000000042", True),
        ("/q/0000000000", True),
        ("/q/x12345678901", True),
        ("/q/item-000000042", False),
        ("/q/0000000042/child", False),
        ("/q/item-" + "\uff10" * 9 + "\uff11", False),  # fullwidth digits
        ("/", False),
    ],
)
def test_looks_sequential_wants_ten_ascii_digits_at_the_end_of_the_name(
    path: str, expected: bool
) -> None:
    assert looks_sequential(path) is expected


def test_plan_rejects_desired_paths_outside_the_root() -> None:
    with pytest.raises(InvalidInputError, match="outside its root /app"):
        make_plan("t", want({"/app/a": b"", "/other": b""}), {}, root="/app")


def test_plan_rejects_a_sibling_that_only_shares_the_root_prefix() -> None:
    with pytest.raises(InvalidInputError, match="/app2"):
        make_plan("t", want({"/app2": b""}), {}, root="/app")


def test_plan_rejects_invalid_paths_to_create() -> None:
    with pytest.raises(InvalidPathError):
        make_plan("t", want({"/a//b": b""}), {})
    with pytest.raises(InvalidPathError):
        make_plan("t", want({"/a/": b""}), {})


def test_plan_rejects_an_invalid_root() -> None:
    with pytest.raises(InvalidPathError):
        make_plan("t", {}, {}, root="app")


# -- sets ----------------------------------------------------------------------


def test_plan_sets_changed_data_against_the_live_version() -> None:
    live = {"/a": have("/a", b"old", version=7)}
    plan = make_plan("t", want({"/a": b"new"}), live)
    assert plan.ops == (
        Op(
            OpKind.SET,
            "/a",
            data=b"new",
            expected_version=7,
            before_digest=digest(b"old"),
            after_digest=digest(b"new"),
        ),
    )


def test_plan_sets_binary_and_empty_values_exactly() -> None:
    live = {"/b": have("/b", b"\xff\xfe", version=1), "/e": have("/e", b"x", version=2)}
    plan = make_plan("t", want({"/b": b"\xff\xfd\x00", "/e": b""}), live)
    assert [(op.path, op.data, op.expected_version) for op in plan.ops] == [
        ("/b", b"\xff\xfd\x00", 1),
        ("/e", b"", 2),
    ]


def test_plan_sets_data_on_the_zookeeper_root() -> None:
    plan = make_plan("t", want({"/": b"x"}), {"/": have("/", b"", version=0)})
    assert shape(plan) == [(OpKind.SET, "/")]


def test_plan_sets_are_sorted_by_path() -> None:
    live = live_of({"/c": b"1", "/a": b"1", "/b": b"1"})
    plan = make_plan("t", want({"/c": b"2", "/a": b"2", "/b": b"2"}), live)
    assert [p for _, p in shape(plan)] == ["/a", "/b", "/c"]


def test_plan_never_writes_an_ephemeral_node_and_warns() -> None:
    live = {"/app/m": have("/app/m", b"live", owner=99)}
    plan = make_plan("t", want({"/app/m": b"desired"}), live)
    assert plan.empty
    assert len(plan.warnings) == 1
    assert "ephemeral" in plan.warnings[0]
    assert "/app/m" in plan.warnings[0]


# -- ACLs ----------------------------------------------------------------------


def test_plan_ignores_acl_differences_unless_asked() -> None:
    desired = {"/a": Znode("/a", b"x", acl=(READ_ONLY,))}
    live = {"/a": have("/a", b"x", acl=(WORLD,))}
    assert make_plan("t", desired, live).empty


def test_plan_sets_acl_against_the_live_acl_version() -> None:
    desired = {"/a": Znode("/a", b"x", acl=(READ_ONLY,))}
    live = {"/a": have("/a", b"x", version=5, aversion=2, acl=(WORLD,))}
    plan = make_plan("t", desired, live, compare_acl=True)
    assert plan.ops == (Op(OpKind.SET_ACL, "/a", acl=(READ_ONLY,), expected_version=2),)


def test_plan_does_not_set_acl_that_differs_only_in_order() -> None:
    desired = {"/a": Znode("/a", acl=(READ_ONLY, Acl(31, "digest", "u:p")))}
    live = {"/a": have("/a", acl=(Acl(31, "digest", "u:p"), READ_ONLY))}
    assert make_plan("t", desired, live, compare_acl=True).empty


def test_plan_sets_data_and_acl_of_one_node_in_that_order() -> None:
    desired = {"/a": Znode("/a", b"new", acl=(READ_ONLY,))}
    live = {"/a": have("/a", b"old", version=4, aversion=9, acl=(WORLD,))}
    plan = make_plan("t", desired, live, compare_acl=True)
    assert [(op.kind, op.expected_version) for op in plan.ops] == [
        (OpKind.SET, 4),
        (OpKind.SET_ACL, 9),
    ]


def test_plan_warns_when_live_acls_were_not_read() -> None:
    desired = {"/a": Znode("/a", b"x", acl=(READ_ONLY,))}
    live = {"/a": have("/a", b"x")}
    plan = make_plan("t", desired, live, compare_acl=True)
    assert plan.empty
    assert len(plan.warnings) == 1
    assert "ACLs were not read for 1 live node" in plan.warnings[0]


def test_plan_does_not_compare_acl_when_desired_has_none() -> None:
    desired = want({"/a": b"x"})
    live = {"/a": have("/a", b"x", acl=(WORLD,))}
    plan = make_plan("t", desired, live, compare_acl=True)
    assert plan.empty
    assert plan.warnings == ()


# -- deletes -------------------------------------------------------------------


def test_plan_without_prune_deletes_nothing_and_counts_extra_paths_in_a_warning() -> None:
    live = live_of({"/app": b"", "/app/a": b"", "/app/b": b"", "/app/b/c": b""})
    plan = make_plan("t", want({"/app": b"", "/app/a": b""}), live, root="/app")
    assert plan.empty
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("2 paths exist live but not in desired; use --prune")


def test_plan_with_prune_deletes_children_before_parents_against_live_versions() -> None:
    live = {
        "/app": have("/app"),
        "/app/a": have("/app/a", b"a", version=1),
        "/app/a/b": have("/app/a/b", b"b", version=2),
        "/app/a/b/c": have("/app/a/b/c", b"c", version=3),
        "/app/z": have("/app/z", b"z", version=4),
    }
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    assert [(op.kind, op.path, op.expected_version) for op in plan.ops] == [
        (OpKind.DELETE, "/app/a/b/c", 3),
        (OpKind.DELETE, "/app/a/b", 2),
        (OpKind.DELETE, "/app/a", 1),
        (OpKind.DELETE, "/app/z", 4),
    ]
    assert plan.ops[0].before_digest == digest(b"c")
    assert plan.ops[0].after_digest is None
    assert plan.ops[0].data is None


def test_plan_never_deletes_the_tree_root() -> None:
    live = live_of({"/app": b"", "/app/a": b""})
    plan = make_plan("t", {}, live, root="/app", prune=True)
    assert shape(plan) == [(OpKind.DELETE, "/app/a")]


def test_plan_never_deletes_the_zookeeper_root() -> None:
    live = live_of({"/": b"", "/a": b""})
    plan = make_plan("t", {}, live, prune=True)
    assert shape(plan) == [(OpKind.DELETE, "/a")]


def test_plan_never_deletes_outside_the_tree_root() -> None:
    live = live_of({"/app": b"", "/app/a": b"", "/elsewhere": b""})
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    assert shape(plan) == [(OpKind.DELETE, "/app/a")]


def test_plan_never_deletes_ephemeral_nodes_and_warns() -> None:
    live = {
        "/app": have("/app"),
        "/app/members": have("/app/members"),
        "/app/members/m1": have("/app/members/m1", owner=0xABC),
        "/app/old": have("/app/old"),
    }
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    # /app/members stays too: deleting it would fail while m1 exists.
    assert shape(plan) == [(OpKind.DELETE, "/app/old")]
    assert any(
        "not deleting 1 ephemeral node" in w and "/app/members/m1" in w for w in plan.warnings
    )


def test_plan_never_deletes_unlisted_parents_of_desired_nodes() -> None:
    live = live_of({"/app": b"", "/app/a": b"", "/app/a/b": b"1"})
    plan = make_plan("t", want({"/app/a/b": b"1"}), live, root="/app", prune=True)
    assert plan.empty


def test_plan_deletes_unicode_paths_and_paths_with_spaces() -> None:
    live = live_of({"/app": b"", "/app/with space": b"", "/app/ünï": b""})
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    assert [p for _, p in shape(plan)] == ["/app/with space", "/app/ünï"]


# -- ordering across kinds -------------------------------------------------------


def test_plan_orders_creates_then_sets_then_acls_then_deletes() -> None:
    desired = {
        "/app": Znode("/app"),
        "/app/new": Znode("/app/new", b"n"),
        "/app/changed": Znode("/app/changed", b"2"),
        "/app/acl": Znode("/app/acl", b"", acl=(READ_ONLY,)),
    }
    live = {
        "/app": have("/app"),
        "/app/changed": have("/app/changed", b"1"),
        "/app/acl": have("/app/acl", acl=(WORLD,)),
        "/app/gone": have("/app/gone"),
    }
    plan = make_plan("t", desired, live, root="/app", prune=True, compare_acl=True)
    assert shape(plan) == [
        (OpKind.CREATE, "/app/new"),
        (OpKind.SET, "/app/changed"),
        (OpKind.SET_ACL, "/app/acl"),
        (OpKind.DELETE, "/app/gone"),
    ]


# -- batch_ops -------------------------------------------------------------------


def creates(n: int, size: int = 0, prefix: str = "/n") -> list[Op]:
    return [Op(OpKind.CREATE, f"{prefix}{i:05d}", data=b"x" * size) for i in range(n)]


def test_estimate_counts_overhead_path_bytes_data_and_acl_entries() -> None:
    op = Op(OpKind.CREATE, "/ü", data=b"12345", acl=(Acl(31, "digest", "user:pw"),))
    expected = OP_OVERHEAD + len("/ü".encode()) + 5 + len("digest") + len("user:pw")
    assert estimate_op_size(op) == expected + ACL_ENTRY_OVERHEAD
    assert estimate_op_size(Op(OpKind.DELETE, "/a")) == OP_OVERHEAD + 2


def test_batch_ops_of_nothing_is_no_batches() -> None:
    assert batch_ops([]) == []


def test_batch_ops_keeps_small_plans_in_one_batch() -> None:
    ops = creates(10)
    assert batch_ops(ops) == [ops]


def test_batch_ops_splits_at_max_ops_preserving_order() -> None:
    ops = creates(2500)
    batches = batch_ops(ops, max_ops=1000)
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [op for b in batches for op in b] == ops


def test_batch_ops_keeps_every_batch_under_max_bytes() -> None:
    ops = creates(100, size=1000)
    max_bytes = 10_000
    batches = batch_ops(ops, max_bytes=max_bytes)
    assert len(batches) > 1
    assert [op for b in batches for op in b] == ops
    for batch in batches:
        assert sum(estimate_op_size(op) for op in batch) <= max_bytes
    # Greedy: no batch could have taken the next batch's first op.
    for batch, following in itertools.pairwise(batches):
        total = sum(estimate_op_size(op) for op in batch)
        assert total + estimate_op_size(following[0]) > max_bytes


def test_batch_ops_allows_a_batch_of_exactly_max_bytes() -> None:
    ops = creates(4, size=100)
    size = estimate_op_size(ops[0])
    assert batch_ops(ops, max_bytes=size * 2) == [ops[:2], ops[2:]]


def test_batch_ops_gives_an_oversized_op_a_batch_of_its_own() -> None:
    small = creates(3, size=10)
    big = Op(OpKind.SET, "/big", data=b"\x00" * 5000, expected_version=1)
    ops = [small[0], big, small[1], small[2]]
    assert batch_ops(ops, max_bytes=1000) == [[small[0]], [big], [small[1], small[2]]]


def test_batch_ops_counts_acl_entries_towards_the_size() -> None:
    acl = tuple(Acl(31, "digest", f"user{i}:" + "h" * 28) for i in range(10))
    ops = [Op(OpKind.SET_ACL, f"/a{i}", acl=acl, expected_version=0) for i in range(4)]
    size = estimate_op_size(ops[0])
    assert size > OP_OVERHEAD + 3 + 10 * ACL_ENTRY_OVERHEAD
    assert batch_ops(ops, max_bytes=size * 2 + 1) == [ops[:2], ops[2:]]


def test_batch_ops_default_limits_fit_well_under_a_mebibyte() -> None:
    ops = creates(40, size=100 * 1024)
    batches = batch_ops(ops)
    assert all(sum(estimate_op_size(op) for op in b) <= 512 * 1024 for b in batches)
    assert [len(b) for b in batches] == [5] * 8


def test_batch_ops_accepts_any_iterable() -> None:
    ops = creates(3)
    assert batch_ops(iter(ops), max_ops=2) == [ops[:2], ops[2:]]


@pytest.mark.parametrize(("max_bytes", "max_ops"), [(0, 10), (-1, 10), (100, 0)])
def test_batch_ops_rejects_non_positive_limits(max_bytes: int, max_ops: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        batch_ops(creates(1), max_bytes=max_bytes, max_ops=max_ops)


# -- check_guards ------------------------------------------------------------------


def ten_live() -> dict[str, Znode]:
    return live_of({"/app": b""} | {f"/app/n{i}": b"" for i in range(9)})


def deleting(*paths: str) -> Plan:
    return Plan("t", tuple(Op(OpKind.DELETE, p, expected_version=3) for p in paths))


def test_guards_pass_a_harmless_plan() -> None:
    live = ten_live()
    desired = want({p: b"" for p in live} | {"/app/n0": b"x", "/app/new": b""})
    plan = make_plan("t", desired, live, root="/app", default_acl=OPS_ONLY)
    assert shape(plan) == [(OpKind.CREATE, "/app/new"), (OpKind.SET, "/app/n0")]
    assert check_guards(plan, desired, live) == []


def test_guards_pass_an_empty_plan_on_empty_trees() -> None:
    assert check_guards(Plan("t", ()), {}, {}) == []


def test_guards_refuse_when_live_is_empty_but_desired_is_not() -> None:
    desired = want({"/app": b"", "/app/a": b""})
    plan = make_plan("t", desired, {}, root="/app", default_acl=OPS_ONLY)
    refusals = check_guards(plan, desired, {})
    assert len(refusals) == 1
    assert "live tree is empty" in refusals[0]
    assert "2 nodes" in refusals[0]


def test_guards_refuse_a_missing_root_when_desired_is_not_empty() -> None:
    desired = want({"/app": b"", "/app/a": b""})
    plan = make_plan("t", desired, {}, root="/app", default_acl=OPS_ONLY)
    refusals = check_guards(plan, desired, None, root="/app")
    assert refusals == [
        "the tree root /app does not exist live but desired has 2 nodes: was the tree read"
        " correctly? (use --force to create it anyway)"
    ]
    assert check_guards(plan, desired, None, root="/app", force=True) == []


def test_guards_refuse_a_live_tree_holding_only_its_root() -> None:
    desired = want({"/app": b"", "/app/a": b""})
    live = live_of({"/app": b""})
    plan = make_plan("t", desired, live, root="/app", default_acl=OPS_ONLY)
    (refusal,) = check_guards(plan, desired, live, root="/app")
    assert refusal.startswith("live tree is empty (only its root /app) but desired has 1 node")


def test_guards_allow_an_empty_live_tree_with_force() -> None:
    desired = want({"/app": b""})
    plan = make_plan("t", desired, {}, root="/app", default_acl=OPS_ONLY)
    assert check_guards(plan, desired, {}, force=True) == []


def test_guards_allow_deletes_up_to_the_fraction() -> None:
    assert check_guards(deleting("/app/n0"), {"/app": Znode("/app")}, ten_live()) == []


def test_guards_refuse_deletes_above_the_fraction() -> None:
    refusals = check_guards(deleting("/app/n0", "/app/n1"), want({"/app": b""}), ten_live())
    assert len(refusals) == 1
    assert "deletes 2 nodes of 10 live (20%)" in refusals[0]
    assert "10%" in refusals[0]


def test_guards_allow_deletes_above_the_fraction_with_force() -> None:
    plan = deleting("/app/n0", "/app/n1")
    assert check_guards(plan, want({"/app": b""}), ten_live(), force=True) == []


def test_guards_use_the_given_delete_fraction() -> None:
    plan = deleting("/app/n0", "/app/n1")
    desired = want({"/app": b""})
    assert check_guards(plan, desired, ten_live(), max_delete_fraction=0.2) == []
    assert check_guards(deleting("/app/n0"), desired, ten_live(), max_delete_fraction=0.0)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_guards_reject_a_delete_fraction_outside_zero_to_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="max_delete_fraction"):
        check_guards(Plan("t", ()), {}, {}, max_delete_fraction=fraction)


def test_guards_refuse_ops_on_protected_paths_and_their_descendants_even_with_force() -> None:
    live = ten_live()
    plan = Plan(
        "t",
        (
            Op(OpKind.SET, "/app/n1", data=b"x", expected_version=3),
            Op(OpKind.CREATE, "/app/n2/child", data=b"", acl=OPS_ONLY),
            Op(OpKind.SET, "/app/n3", data=b"x", expected_version=3),
        ),
    )
    refusals = check_guards(plan, live, live, protected=["/app/n1", "**/n2"], force=True)
    assert refusals == ["plan touches 2 protected paths: /app/n1, /app/n2/child"]


def test_guards_list_at_most_five_paths_and_count_the_rest() -> None:
    live = ten_live()
    plan = Plan("t", tuple(Op(OpKind.SET, p, data=b"x") for p in sorted(live)))
    (refusal,) = check_guards(plan, live, live, protected=["/app"])
    assert refusal.startswith("plan touches 10 protected paths: /app, /app/n0,")
    assert refusal.endswith("and 5 more")


def test_guards_refuse_ops_on_ephemeral_live_nodes_even_with_force() -> None:
    live = ten_live() | {"/app/e": have("/app/e", owner=7)}
    plan = Plan("t", (Op(OpKind.SET, "/app/e", data=b"x", expected_version=0),))
    assert check_guards(plan, live, live, force=True) == ["plan touches 1 ephemeral node: /app/e"]


def test_guards_report_every_reason_at_once() -> None:
    live = ten_live() | {"/app/e": have("/app/e", owner=7)}
    plan = deleting("/app/e", "/app/n0", "/app/n1")
    refusals = check_guards(plan, want({"/app": b""}), live, protected=["/app/n0"])
    assert len(refusals) == 3
    assert "deletes 3 nodes" in refusals[0]
    assert "protected" in refusals[1]
    assert "ephemeral" in refusals[2]


def test_guards_pass_a_plan_made_with_prune_for_a_small_removal() -> None:
    live = ten_live()
    desired = {p: Znode(p) for p in live if p != "/app/n8"}
    plan = make_plan("t", desired, live, root="/app", prune=True)
    assert shape(plan) == [(OpKind.DELETE, "/app/n8")]
    assert check_guards(plan, desired, live) == []


def test_plan_warnings_use_the_singular_for_one_path() -> None:
    live = live_of({"/app": b"", "/app/a": b""})
    plan = make_plan(
        "t", want({"/app": b"", "/app/q0000000001": b""}), live, root="/app", default_acl=OPS_ONLY
    )
    assert any("creating 1 path with a 10-digit suffix" in w for w in plan.warnings)
    assert any(w.startswith("1 path exists live but not in desired") for w in plan.warnings)


def test_guards_refuse_a_value_too_large_for_one_request_even_with_force() -> None:
    live = ten_live()
    plan = Plan(
        "t",
        (
            Op(OpKind.CREATE, "/app/fits", data=b"x" * 1_000_000, acl=OPS_ONLY),
            Op(OpKind.SET, "/app/n0", data=b"x" * 1_100_000, expected_version=0),
        ),
    )
    refusals = check_guards(plan, live, live, force=True)
    assert refusals == [
        "1 value is too large for one ZooKeeper request (jute.maxbuffer, 1 MiB by default):"
        " /app/n0 (1100000 bytes)"
    ]
    assert check_guards(plan, live, live, max_op_bytes=2_000_000) == []


def counted(path: str, children: int) -> Znode:
    return Znode(path, b"", Stat(version=1, num_children=children))


def test_prune_keeps_a_node_whose_stat_counts_children_the_read_did_not_see() -> None:
    # /app/old has an excluded child (never read): deleting it would fail the batch.
    live = {
        "/app": counted("/app", 2),
        "/app/old": counted("/app/old", 1),
        "/app/gone": counted("/app/gone", 0),
    }
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    assert shape(plan) == [(OpKind.DELETE, "/app/gone")]
    assert any(
        w.startswith("not deleting 1 node that keeps children zkdrift does not manage")
        and "/app/old" in w
        for w in plan.warnings
    )


def test_prune_keeps_the_ancestors_of_a_node_with_unseen_children() -> None:
    live = {
        "/app": counted("/app", 1),
        "/app/a": counted("/app/a", 1),
        "/app/a/b": counted("/app/a/b", 3),
    }
    plan = make_plan("t", want({"/app": b""}), live, root="/app", prune=True)
    assert plan.ops == ()
    (warning,) = [w for w in plan.warnings if "does not manage" in w]
    assert "/app/a, /app/a/b" in warning


# -- ACLs of created nodes --------------------------------------------------------

WORLD_READ = (Acl(1, "world", "anyone"),)
BOB = (Acl(31, "digest", "bob:aGFzaA=="),)


def test_created_nodes_inherit_the_acl_of_their_nearest_existing_parent() -> None:
    live = {"/app": have("/app")}
    desired = want({"/app": b"", "/app/db": b"", "/app/db/url": b"x"})

    assert acl_sources(desired, live, root="/app") == {"/app"}
    plan = make_plan("t", desired, live, root="/app", parent_acls={"/app": BOB})

    assert [(op.path, op.acl) for op in plan.ops] == [("/app/db", BOB), ("/app/db/url", BOB)]


def test_a_desired_acl_wins_over_the_default_and_its_children_inherit_it() -> None:
    live = {"/app": have("/app")}
    desired = want({"/app": b""}) | {
        "/app/open": Znode("/app/open", b"", acl=WORLD_READ),
        "/app/open/x": Znode("/app/open/x", b"1"),
        "/app/db": Znode("/app/db", b""),
    }

    plan = make_plan("t", desired, live, root="/app", parent_acls={"/app": BOB})
    acls = {op.path: op.acl for op in plan.ops}

    assert acls == {"/app/db": BOB, "/app/open": WORLD_READ, "/app/open/x": WORLD_READ}


def test_the_tree_default_acl_replaces_inheritance_for_created_nodes_and_missing_parents() -> None:
    live = {"/app": have("/app")}
    desired = want({"/app": b"", "/app/a/b": b"1"})

    plan = make_plan("t", desired, live, root="/app", parent_acls={}, default_acl=OPS_ONLY)

    assert [(op.path, op.acl) for op in plan.ops] == [("/app/a", OPS_ONLY), ("/app/a/b", OPS_ONLY)]


def test_a_create_whose_acl_is_unknown_is_refused_never_sent_open() -> None:
    plan = make_plan("t", want({"/app": b"", "/app/a": b""}), {"/app": have("/app")}, root="/app")

    assert plan.ops[0].acl is None
    (refusal,) = check_guards(plan, want({"/app": b"", "/app/a": b""}), {"/app": have("/app")})
    assert refusal.startswith("1 node would be created without a known ACL")


def test_a_secret_path_is_never_created_world_readable_unless_the_policy_allows_it() -> None:
    live = {"/app": have("/app", version=0), "/app/x": have("/app/x")}
    desired = want({"/app": b"", "/app/x": b"", "/app/db_password": b"s3cret", "/app/host": b"h"})
    plan = make_plan("t", desired, live, root="/app", parent_acls={"/app": WORLD_READ})

    def secret(path: str) -> bool:
        return "password" in path

    (refusal,) = check_guards(plan, desired, live, root="/app", is_secret=secret, force=True)
    assert refusal.startswith("1 secret path would be readable by anyone (world:anyone:r)")
    assert refusal.endswith(": /app/db_password")
    allowed = check_guards(
        plan, desired, live, root="/app", is_secret=secret, allow_world_readable_secrets=True
    )
    assert allowed == []


def test_acl_parsing_reads_what_zookeeper_s_cli_writes() -> None:
    assert Acl.parse("world:anyone:r") == Acl(1, "world", "anyone")
    assert Acl.parse("digest:bob:abc=:cdrwa") == Acl(31, "digest", "bob:abc=")
    assert Acl.parse("x509:CN=app,O=acme:rw") == Acl(3, "x509", "CN=app,O=acme")
    assert Acl.parse("world:anyone:r").world_readable
    assert not Acl.parse("world:anyone:w").world_readable
    for bad in ("world", "world:anyone", "world:anyone:", ":x:r", "world:anyone:z"):
        with pytest.raises(ValueError, match=r"ACL|permission"):
            Acl.parse(bad)
