"""The stream merge and the ancestor pass find exactly what the whole-tree functions find."""

from __future__ import annotations

import random

import pytest

from zkdrift.diff import NodeKey, UnorderedStreamError, covered, diff, differing
from zkdrift.model import Acl, Stat, TreeState, Znode, digest, path_digest
from zkdrift.paths import ancestors
from zkdrift.scope import scope_of
from zkdrift.store.compare import Counts, ancestors_among

ACLS = (None, (Acl(31, "world", "anyone"),), (Acl(1, "world", "anyone"), Acl(31, "auth", "")))


def keys(state: dict[str, Znode]) -> list[NodeKey]:
    rows: list[NodeKey] = [
        (
            path_digest(n.path),
            n.path,
            digest(n.data),
            None if n.acl is None else frozenset((a.perms, a.scheme, a.id) for a in n.acl),
            n.ephemeral,
        )
        for n in state.values()
    ]
    return sorted(rows, key=lambda r: r[0])


def random_tree(rng: random.Random, size: int) -> dict[str, Znode]:
    nodes: dict[str, Znode] = {}
    for _ in range(size):
        path = "/" + "/".join(rng.choice("abc d") for _ in range(rng.randint(1, 4)))
        data = rng.choice([b"", b"1", b"\xff\xfe", "é".encode(), b"x" * 3])
        nodes[path] = Znode(path, data, None, rng.choice(ACLS))
    return nodes


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("compare_acl", [False, True])
def test_the_merge_yields_exactly_the_paths_diff_reports(seed: int, compare_acl: bool) -> None:
    rng = random.Random(seed)
    before = random_tree(rng, rng.randint(0, 40))
    after = dict(before)
    for path in rng.sample(sorted(before), k=len(before) // 3):
        del after[path]
    after.update(random_tree(rng, rng.randint(0, 20)))

    pairs = list(differing(keys(before), keys(after), compare_acl=compare_acl))

    expected = {c.path for c in diff(before, after, compare_acl=compare_acl)}
    found: set[str] = set()
    for left, right in pairs:
        path = left[1] if left is not None else right[1] if right is not None else ""
        found.add(path)
        assert (left is None) == (path not in before)
        assert (right is None) == (path not in after)
    assert found == expected
    assert len(pairs) == len(found)


def test_unread_acls_come_out_when_asked() -> None:
    acl = (Acl(31, "world", "anyone"),)
    desired = {"/a": Znode("/a", b"1", None, acl), "/b": Znode("/b", b"1", None, acl)}
    live = {"/a": Znode("/a", b"1", None, None), "/b": Znode("/b", b"1", None, acl)}

    assert list(differing(keys(desired), keys(live), compare_acl=True)) == []
    pairs = list(differing(keys(desired), keys(live), compare_acl=True, unread_acl=True))

    assert [(left[1] if left else None) for left, _ in pairs] == ["/a"]


def test_a_stream_out_of_order_is_refused() -> None:
    rows = keys({p: Znode(p, b"") for p in ("/a", "/b", "/c")})

    with pytest.raises(UnorderedStreamError):
        list(differing(list(reversed(rows)), []))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("strict", [True, False])
def test_the_ancestor_pass_finds_the_ancestors_a_whole_tree_walk_finds(
    seed: int, strict: bool
) -> None:
    rng = random.Random(seed)
    paths = list(random_tree(rng, 60))
    targets = set(random_tree(rng, 30)) | {"/"}
    rng.shuffle(paths)

    found = covered(targets, iter(paths), strict=strict, cache_size=4)

    expected = {a for p in paths for a in ancestors(p) if a in targets}
    if not strict:
        expected |= targets & set(paths)
    assert found == expected


def test_the_one_path_scope_rule_is_the_whole_tree_rule() -> None:
    nodes = {
        p: Znode(p, b"", None)
        for p in ("/app", "/app/a", "/app/x", "/app/x/y", "/app/lock", "/app/lock/l", "/app/b c")
    }
    nodes["/app/e"] = Znode("/app/e", b"", Stat(ephemeral_owner=7))
    for includes in ((), ("/app/*",)):
        scope = scope_of("/app", ("/app/x",), includes, "/app/lock")
        state = TreeState("/app", nodes)
        for keep in (False, True):
            rule = scope.path_filter(keep_ephemeral=keep, cache_size=2)
            kept = {p for p, n in nodes.items() if rule(p, n.ephemeral)}
            whole = scope.plan_view(state) if keep else scope.managed(state)
            assert kept == set(whole)


@pytest.mark.parametrize("seed", range(20))
def test_counting_a_stream_collects_the_ancestors_of_the_nodes_the_view_keeps(seed: int) -> None:
    rng = random.Random(seed)
    nodes = random_tree(rng, 60)
    nodes["/x/e"] = Znode("/x/e", b"", Stat(ephemeral_owner=5))
    scope = scope_of("/", ("/a/b",), (), None)
    for keep_ephemeral in (False, True):
        view = scope.path_filter(keep_ephemeral=keep_ephemeral)
        counts = Counts("/").collecting_ancestors()

        kept = [row[1] for row in counts.counted(keys(nodes), view)]

        assert kept == [p for p in (row[1] for row in keys(nodes)) if view(p, p == "/x/e")]
        assert counts.ancestors == {a for p in kept for a in ancestors(p)}
        assert counts.nodes == len(kept)
        assert counts.persistent == len(kept) - ("/x/e" in kept)
        assert counts.below_root == len(kept) - ("/" in kept)


@pytest.mark.parametrize("seed", range(20))
def test_ancestors_among_targets_are_those_the_ancestor_pass_finds(seed: int) -> None:
    rng = random.Random(seed)
    paths = list(random_tree(rng, 60))
    targets = set(random_tree(rng, 30)) | {"/"}
    rows = keys({p: Znode(p, b"") for p in paths})
    expected = covered(targets, iter(paths))
    view = scope_of("/", (), (), None).path_filter(keep_ephemeral=False)
    every = {a for p in paths for a in ancestors(p)}
    for limit in (None, 2):
        counts = Counts("/").collecting_ancestors(limit)
        for _ in counts.counted(rows, view):
            pass
        # Past the limit nothing is kept, and the paths stream once more instead.
        assert (counts.ancestors is None) is (limit == 2 and len(every) > 2)
        assert ancestors_among(targets, counts, lambda: iter(paths)) == expected
