from __future__ import annotations

import pytest

from zkdrift.diff import DriftItem, acl_differs, classify, diff, without_required_parents
from zkdrift.model import Acl, Change, ChangeKind, DriftClass, Stat, TreeState, Znode

WORLD = Acl(31, "world", "anyone")
READ_ONLY = Acl(1, "world", "anyone")
DIGEST_ADMIN = Acl(31, "digest", "admin:hash=")


def nodes(values: dict[str, bytes]) -> dict[str, Znode]:
    return {p: Znode(p, d) for p, d in values.items()}


def kinds(changes: list[Change]) -> list[tuple[str, ChangeKind]]:
    return [(c.path, c.kind) for c in changes]


# -- diff -------------------------------------------------------------------


def test_diff_of_identical_trees_is_empty() -> None:
    tree = nodes({"/a": b"1", "/a/b": b"2"})
    assert diff(tree, dict(tree)) == []


def test_diff_of_two_empty_trees_is_empty() -> None:
    assert diff({}, {}) == []


def test_diff_reports_added_removed_and_data_changed_nodes() -> None:
    before = nodes({"/a": b"1", "/b": b"2", "/c": b"3"})
    after = nodes({"/a": b"1", "/b": b"two", "/d": b"4"})
    changes = diff(before, after)
    assert kinds(changes) == [
        ("/b", ChangeKind.DATA_CHANGED),
        ("/c", ChangeKind.REMOVED),
        ("/d", ChangeKind.ADDED),
    ]


def test_diff_carries_both_sides_of_each_change() -> None:
    before = nodes({"/b": b"2", "/c": b"3"})
    after = nodes({"/b": b"two", "/d": b"4"})
    by_path = {c.path: c for c in diff(before, after)}
    assert by_path["/b"].before == before["/b"]
    assert by_path["/b"].after == after["/b"]
    assert by_path["/c"].before == before["/c"]
    assert by_path["/c"].after is None
    assert by_path["/d"].before is None
    assert by_path["/d"].after == after["/d"]


def test_diff_reports_data_change_for_binary_values() -> None:
    before = nodes({"/bin": b"\x00\xff\xfe\x80"})
    after = nodes({"/bin": b"\x00\xff\xfe\x81"})
    assert kinds(diff(before, after)) == [("/bin", ChangeKind.DATA_CHANGED)]


def test_diff_compares_bytes_not_decoded_text() -> None:
    # The same text in two encodings is different data.
    before = nodes({"/t": "é".encode()})
    after = nodes({"/t": "é".encode("latin-1")})
    assert kinds(diff(before, after)) == [("/t", ChangeKind.DATA_CHANGED)]


def test_diff_treats_empty_value_and_non_empty_value_as_different() -> None:
    assert kinds(diff(nodes({"/e": b""}), nodes({"/e": b" "}))) == [("/e", ChangeKind.DATA_CHANGED)]
    assert diff(nodes({"/e": b""}), nodes({"/e": b""})) == []


def test_diff_ignores_stat_differences() -> None:
    before = {"/a": Znode("/a", b"x", Stat(version=1, mtime=10))}
    after = {"/a": Znode("/a", b"x", Stat(version=7, mtime=99))}
    assert diff(before, after) == []


def test_diff_handles_unicode_paths_and_paths_with_spaces() -> None:
    before = nodes({"/app/ünï cødé": b"1", "/app/with space": b"a"})
    after = nodes({"/app/ünï cødé": b"2", "/app/日本": b"b"})
    assert kinds(diff(before, after)) == [
        ("/app/with space", ChangeKind.REMOVED),
        ("/app/ünï cødé", ChangeKind.DATA_CHANGED),
        ("/app/日本", ChangeKind.ADDED),
    ]


def test_diff_handles_the_root_path() -> None:
    assert kinds(diff(nodes({"/": b""}), nodes({"/": b"x"}))) == [("/", ChangeKind.DATA_CHANGED)]
    assert kinds(diff({}, nodes({"/": b""}))) == [("/", ChangeKind.ADDED)]


def test_diff_is_sorted_by_path_as_plain_strings() -> None:
    after = nodes({p: b"" for p in ["/b", "/a/b", "/a b", "/a", "/", "/A", "/a/a"]})
    paths = [c.path for c in diff({}, after)]
    assert paths == sorted(paths)
    assert paths == ["/", "/A", "/a", "/a b", "/a/a", "/a/b", "/b"]


def test_diff_accepts_tree_states_and_plain_mappings_alike() -> None:
    before = TreeState.of("/app", {"/app": b"", "/app/a": b"1"})
    after = {"/app": Znode("/app"), "/app/a": Znode("/app/a", b"2")}
    assert kinds(diff(before, after)) == [("/app/a", ChangeKind.DATA_CHANGED)]
    assert kinds(diff(after, before)) == [("/app/a", ChangeKind.DATA_CHANGED)]


def test_diff_ignores_acl_differences_unless_asked() -> None:
    before = {"/a": Znode("/a", b"x", acl=(WORLD,))}
    after = {"/a": Znode("/a", b"x", acl=(READ_ONLY,))}
    assert diff(before, after) == []
    assert kinds(diff(before, after, compare_acl=True)) == [("/a", ChangeKind.ACL_CHANGED)]


def test_diff_compares_acls_as_sets_ignoring_order() -> None:
    before = {"/a": Znode("/a", acl=(WORLD, DIGEST_ADMIN))}
    after = {"/a": Znode("/a", acl=(DIGEST_ADMIN, WORLD))}
    assert diff(before, after, compare_acl=True) == []


def test_diff_does_not_compare_acls_when_either_side_did_not_read_them() -> None:
    with_acl = {"/a": Znode("/a", acl=(WORLD,))}
    without_acl = {"/a": Znode("/a")}
    assert diff(with_acl, without_acl, compare_acl=True) == []
    assert diff(without_acl, with_acl, compare_acl=True) == []


def test_diff_treats_an_empty_acl_as_read_and_different_from_a_non_empty_one() -> None:
    before = {"/a": Znode("/a", acl=())}
    after = {"/a": Znode("/a", acl=(WORLD,))}
    assert kinds(diff(before, after, compare_acl=True)) == [("/a", ChangeKind.ACL_CHANGED)]


def test_diff_reports_data_and_acl_change_on_one_node_as_two_changes_data_first() -> None:
    before = {"/a": Znode("/a", b"1", acl=(WORLD,)), "/b": Znode("/b")}
    after = {"/a": Znode("/a", b"2", acl=(READ_ONLY,)), "/b": Znode("/b", b"x")}
    assert kinds(diff(before, after, compare_acl=True)) == [
        ("/a", ChangeKind.DATA_CHANGED),
        ("/a", ChangeKind.ACL_CHANGED),
        ("/b", ChangeKind.DATA_CHANGED),
    ]


def test_diff_does_not_report_acl_change_for_added_or_removed_nodes() -> None:
    before = {"/gone": Znode("/gone", acl=(WORLD,))}
    after = {"/new": Znode("/new", acl=(READ_ONLY,))}
    assert kinds(diff(before, after, compare_acl=True)) == [
        ("/gone", ChangeKind.REMOVED),
        ("/new", ChangeKind.ADDED),
    ]


def test_acl_differs_is_false_when_either_acl_is_unknown() -> None:
    assert not acl_differs(Znode("/a"), Znode("/a", acl=(WORLD,)))
    assert not acl_differs(Znode("/a", acl=(WORLD,)), Znode("/a"))
    assert not acl_differs(Znode("/a", acl=(WORLD,)), Znode("/a", acl=(WORLD, WORLD)))
    assert acl_differs(Znode("/a", acl=(WORLD,)), Znode("/a", acl=(READ_ONLY,)))


def test_diff_of_twenty_thousand_nodes_finds_each_of_1500_differences() -> None:
    before = {
        f"/app/s{i // 100}/n{i}": Znode(f"/app/s{i // 100}/n{i}", b"v" * 40 + str(i).encode())
        for i in range(20_000)
    }
    after = dict(before)
    for i in range(0, 500):
        p = f"/app/s{i // 100}/n{i}"
        after[p] = Znode(p, b"changed")
    for i in range(500, 1000):
        del after[f"/app/s{i // 100}/n{i}"]
    for i in range(20_000, 20_500):
        after[f"/app/new/n{i}"] = Znode(f"/app/new/n{i}", b"new")
    before_state = TreeState("/app", before)
    after_state = TreeState("/app", after)

    changes = diff(before_state, after_state)
    assert len(changes) == 1500
    assert sum(c.kind is ChangeKind.DATA_CHANGED for c in changes) == 500
    assert sum(c.kind is ChangeKind.REMOVED for c in changes) == 500
    assert sum(c.kind is ChangeKind.ADDED for c in changes) == 500


# -- classify ---------------------------------------------------------------


def one(items: list[DriftItem]) -> DriftItem:
    assert len(items) == 1
    return items[0]


def test_classify_finds_nothing_when_desired_equals_live() -> None:
    tree = nodes({"/a": b"1"})
    assert classify(nodes({"/a": b"0"}), tree, dict(tree)) == []


def test_classify_calls_a_live_edit_outside_zkdrift_drift() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"1"}), nodes({"/a": b"edited"})))
    assert item.classification is DriftClass.DRIFT
    assert item.kind is ChangeKind.DATA_CHANGED


def test_classify_calls_a_desired_edit_not_yet_applied_pending() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"2"}), nodes({"/a": b"1"})))
    assert item.classification is DriftClass.PENDING
    assert item.kind is ChangeKind.DATA_CHANGED


def test_classify_calls_edits_on_both_sides_a_conflict() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"2"}), nodes({"/a": b"3"})))
    assert item.classification is DriftClass.CONFLICT


def test_classify_carries_desired_live_and_base_nodes() -> None:
    base = nodes({"/a": b"1"})
    desired = nodes({"/a": b"2"})
    live = nodes({"/a": b"3"})
    item = one(classify(base, desired, live))
    assert item == DriftItem(
        "/a", DriftClass.CONFLICT, ChangeKind.DATA_CHANGED, desired["/a"], live["/a"], base["/a"]
    )


def test_classify_calls_a_node_deleted_live_but_still_desired_drift_with_kind_added() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"1"}), {}))
    assert item.classification is DriftClass.DRIFT
    assert item.kind is ChangeKind.ADDED
    assert item.live is None


def test_classify_calls_a_node_deleted_live_and_edited_in_desired_a_conflict() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"2"}), {}))
    assert item.classification is DriftClass.CONFLICT
    assert item.kind is ChangeKind.ADDED


def test_classify_calls_a_new_desired_node_pending() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"1", "/b": b"new"}), nodes({"/a": b"1"})))
    assert item.path == "/b"
    assert item.classification is DriftClass.PENDING
    assert item.kind is ChangeKind.ADDED
    assert item.base is None


def test_classify_calls_a_node_created_live_outside_zkdrift_drift_with_kind_removed() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"1"}), nodes({"/a": b"1", "/x": b"?"})))
    assert item.path == "/x"
    assert item.classification is DriftClass.DRIFT
    assert item.kind is ChangeKind.REMOVED
    assert item.desired is None


def test_classify_calls_a_node_removed_from_desired_pending() -> None:
    base = nodes({"/a": b"1", "/b": b"2"})
    item = one(classify(base, nodes({"/a": b"1"}), nodes({"/a": b"1", "/b": b"2"})))
    assert item.classification is DriftClass.PENDING
    assert item.kind is ChangeKind.REMOVED


def test_classify_calls_a_node_removed_from_desired_but_edited_live_a_conflict() -> None:
    base = nodes({"/a": b"1", "/b": b"2"})
    item = one(classify(base, nodes({"/a": b"1"}), nodes({"/a": b"1", "/b": b"live"})))
    assert item.classification is DriftClass.CONFLICT
    assert item.kind is ChangeKind.REMOVED


def test_classify_calls_a_node_added_on_both_sides_with_different_data_a_conflict() -> None:
    base = nodes({"/a": b"1"})
    item = one(classify(base, nodes({"/a": b"1", "/n": b"d"}), nodes({"/a": b"1", "/n": b"l"})))
    assert item.classification is DriftClass.CONFLICT


@pytest.mark.parametrize("base", [None, {}, TreeState("/")])
def test_classify_without_any_base_calls_every_difference_drift(
    base: dict[str, Znode] | TreeState | None,
) -> None:
    desired = nodes({"/a": b"1", "/b": b"2"})
    live = nodes({"/a": b"x", "/c": b"3"})
    items = classify(base, desired, live)
    assert [(i.path, i.kind) for i in items] == [
        ("/a", ChangeKind.DATA_CHANGED),
        ("/b", ChangeKind.ADDED),
        ("/c", ChangeKind.REMOVED),
    ]
    assert all(i.classification is DriftClass.DRIFT for i in items)
    assert all(i.base is None for i in items)


def test_classify_compares_binary_values_as_bytes() -> None:
    base = nodes({"/b": b"\xff\x00"})
    item = one(classify(base, nodes({"/b": b"\xff\x01"}), nodes({"/b": b"\xff\x00"})))
    assert item.classification is DriftClass.PENDING


def test_classify_ignores_acl_differences_unless_asked() -> None:
    base = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    desired = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    live = {"/a": Znode("/a", b"1", acl=(READ_ONLY,))}
    assert classify(base, desired, live) == []
    item = one(classify(base, desired, live, compare_acl=True))
    assert item.kind is ChangeKind.ACL_CHANGED
    assert item.classification is DriftClass.DRIFT


def test_classify_calls_an_acl_changed_in_desired_only_pending() -> None:
    base = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    desired = {"/a": Znode("/a", b"1", acl=(READ_ONLY,))}
    live = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    assert one(classify(base, desired, live, compare_acl=True)).classification is (
        DriftClass.PENDING
    )


def test_classify_calls_an_acl_changed_on_both_sides_a_conflict() -> None:
    base = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    desired = {"/a": Znode("/a", b"1", acl=(READ_ONLY,))}
    live = {"/a": Znode("/a", b"1", acl=(DIGEST_ADMIN,))}
    assert one(classify(base, desired, live, compare_acl=True)).classification is (
        DriftClass.CONFLICT
    )


def test_classify_calls_an_acl_difference_drift_when_base_recorded_no_acl() -> None:
    base = {"/a": Znode("/a", b"1")}
    desired = {"/a": Znode("/a", b"1", acl=(READ_ONLY,))}
    live = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    assert one(classify(base, desired, live, compare_acl=True)).classification is (DriftClass.DRIFT)


def test_classify_classifies_data_and_acl_of_one_node_separately() -> None:
    base = {"/a": Znode("/a", b"1", acl=(WORLD,))}
    desired = {"/a": Znode("/a", b"2", acl=(WORLD,))}  # data edited in desired
    live = {"/a": Znode("/a", b"1", acl=(READ_ONLY,))}  # ACL edited live
    items = classify(base, desired, live, compare_acl=True)
    assert [(i.kind, i.classification) for i in items] == [
        (ChangeKind.DATA_CHANGED, DriftClass.PENDING),
        (ChangeKind.ACL_CHANGED, DriftClass.DRIFT),
    ]


def test_classify_results_are_sorted_by_path() -> None:
    base = nodes({"/z": b"1", "/a": b"1"})
    desired = nodes({"/z": b"2", "/a": b"1", "/m m": b"new"})
    live = nodes({"/z": b"1", "/a": b"edited", "/b": b"x"})
    paths = [i.path for i in classify(base, desired, live)]
    assert paths == ["/a", "/b", "/m m", "/z"]


def test_live_parents_that_desired_paths_need_are_not_drift() -> None:
    live = nodes({"/app": b"", "/app/db": b"", "/app/db/url": b"x", "/app/old": b""})
    desired = nodes({"/app/db/url": b"x"})

    items = without_required_parents(classify(None, desired, live), desired)

    assert [(i.path, i.kind) for i in items] == [("/app/old", ChangeKind.REMOVED)]
