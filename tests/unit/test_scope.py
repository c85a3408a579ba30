"""What zkdrift manages of a tree: excludes, includes, ephemeral nodes and its own lock root."""

from __future__ import annotations

from zkdrift.model import Stat, TreeState, Znode
from zkdrift.paths import is_excluded
from zkdrift.scope import Scope, reserved_paths, scope_of


def nodes(values: dict[str, bytes]) -> dict[str, Znode]:
    return {p: Znode(p, v) for p, v in values.items()}


def live_node(path: str, data: bytes = b"", *, owner: int = 0) -> Znode:
    return Znode(path, data, Stat(ephemeral_owner=owner))


def test_managed_drops_ephemeral_nodes() -> None:
    state = TreeState(
        "/app",
        {
            "/app": live_node("/app"),
            "/app/conf": live_node("/app/conf", b"x"),
            "/app/members/m1": live_node("/app/members/m1", owner=0x1234),
        },
    )
    assert sorted(Scope("/app").managed(state)) == ["/app", "/app/conf"]


def test_plan_view_keeps_ephemeral_nodes_that_are_not_excluded() -> None:
    state = {
        "/app": live_node("/app"),
        "/app/members/m1": live_node("/app/members/m1", owner=0x1234),
        "/app/tmp/m2": live_node("/app/tmp/m2", owner=0x1234),
    }
    view = Scope("/app", excludes=("/app/tmp",)).plan_view(state)
    assert sorted(view) == ["/app", "/app/members/m1"]


def test_managed_drops_excluded_paths_and_their_descendants() -> None:
    state = nodes({"/app": b"", "/app/locks": b"", "/app/locks/l1": b"", "/app/conf": b""})
    assert sorted(Scope("/app", excludes=("/app/locks",)).managed(state)) == ["/app", "/app/conf"]


def test_managed_keeps_only_included_paths_when_includes_are_given() -> None:
    state = nodes({"/app": b"", "/app/conf": b"", "/app/conf/a": b"", "/app/other": b""})
    view = Scope("/app", includes=("/app/conf/**", "/app")).managed(state)
    assert sorted(view) == ["/app", "/app/conf/a"]


def test_managed_applies_excludes_after_includes() -> None:
    state = nodes({"/app/conf/a": b"", "/app/conf/tmp/b": b""})
    view = Scope("/app", excludes=("**/tmp",), includes=("/app/**",)).managed(state)
    assert sorted(view) == ["/app/conf/a"]


def test_managed_returns_a_new_dict_with_the_same_nodes() -> None:
    state = nodes({"/a b": b"\x00", "/ü": b""})
    view = Scope("/").managed(state)
    assert view == state
    assert view is not state
    assert view["/a b"] is state["/a b"]


def test_managed_excludes_exactly_what_is_excluded_says() -> None:
    state = nodes(
        {
            p: b""
            for p in [
                "/",
                "/app",
                "/app/tmp",
                "/app/tmp/a",
                "/app/conf",
                "/app/conf/tmp.x",
                "/app/x/tmp/y/z",
                "/other",
            ]
        }
    )
    excludes = ("**/tmp", "/other")
    view = Scope("/", excludes=excludes).managed(state)
    assert sorted(view) == sorted(p for p in state if not is_excluded(p, excludes))
    assert sorted(view) == ["/", "/app", "/app/conf", "/app/conf/tmp.x"]


def test_the_lock_root_inside_a_tree_is_reserved_with_its_parents_but_not_its_siblings() -> None:
    assert reserved_paths("/", "/zkdrift/locks") == ("/zkdrift/locks", "/zkdrift")
    assert reserved_paths("/app", "/zkdrift/locks") == ()
    assert reserved_paths("/zkdrift/locks", "/zkdrift/locks") == ()


def test_managed_never_holds_zkdrift_s_own_lock_nodes() -> None:
    state = nodes(
        {
            "/": b"",
            "/zkdrift": b"",
            "/zkdrift/locks": b"",
            "/zkdrift/locks/app": b"",
            "/zkdrift/locks/app/x__lock__0000000001": b"{}",
            "/zkdrift/other": b"kept",
            "/conf": b"",
        }
    )
    scope = scope_of("/", (), (), "/zkdrift/locks")
    assert sorted(scope.managed(state)) == ["/", "/conf", "/zkdrift/other"]
    assert sorted(scope.plan_view(state)) == ["/", "/conf", "/zkdrift/other"]


def test_unmanaged_problem_names_the_rule_a_path_breaks() -> None:
    scope = Scope("/app", excludes=("**/tmp",), includes=("/app/**",), reserved=())
    assert scope.unmanaged_problem("/app/conf/a") is None
    assert "outside the root" in (scope.unmanaged_problem("/other") or "")
    assert "'**/tmp'" in (scope.unmanaged_problem("/app/tmp/x") or "")
    assert "include globs" in (scope.unmanaged_problem("/app") or "")
    locked = scope_of("/", (), (), "/zkdrift/locks")
    assert "locks" in (locked.unmanaged_problem("/zkdrift/locks/app") or "")
