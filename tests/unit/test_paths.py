from __future__ import annotations

import pytest

from zkdrift.paths import (
    InvalidPathError,
    ancestors,
    basename,
    depth,
    glob_match,
    is_excluded,
    is_under,
    join,
    matches_any,
    matches_self_or_ancestor,
    parent_of,
    validate_path,
)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/a",
        "/a/b/c",
        "/app/with space",
        "/app/ünïcødé/日本語",
        "/app/name.with.dots",
        "/app/...",
        "/app/-_~!@#$%^&*()",
        "/a/0000000001",
    ],
)
def test_validate_path_accepts_valid_paths_and_returns_them(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("a/b", "not absolute"),
        ("/a/", "must not end"),
        ("/a//b", "empty segment"),
        ("//", "must not end"),
        ("/a/./b", "relative segment"),
        ("/a/..", "relative segment"),
        ("/.", "relative segment"),
        ("/a\x00b", "invalid character"),
        ("/a\nb", "invalid character"),
        ("/a\x7fb", "invalid character"),
        ("/a\ufffeb", "invalid character"),
        ("/a\ue000b", "invalid character"),
    ],
)
def test_validate_path_rejects_invalid_paths_with_a_reason(path: str, reason: str) -> None:
    with pytest.raises(InvalidPathError, match=reason):
        validate_path(path)


def test_invalid_path_error_is_a_value_error() -> None:
    assert issubclass(InvalidPathError, ValueError)


def test_join_does_not_double_the_slash_under_the_root() -> None:
    assert join("/", "a") == "/a"
    assert join("/a", "b") == "/a/b"
    assert join("/a b", "c d") == "/a b/c d"


@pytest.mark.parametrize(
    ("path", "parent"),
    [("/", "/"), ("/a", "/"), ("/a/b", "/a"), ("/a/b/c", "/a/b"), ("/x y/z", "/x y")],
)
def test_parent_of_returns_the_parent_and_the_root_is_its_own_parent(
    path: str, parent: str
) -> None:
    assert parent_of(path) == parent


def test_is_under_includes_the_root_itself_and_its_descendants() -> None:
    assert is_under("/app", "/app")
    assert is_under("/app/a/b", "/app")
    assert is_under("/anything", "/")
    assert is_under("/", "/")


def test_is_under_does_not_confuse_a_sibling_sharing_a_prefix_with_a_child() -> None:
    assert not is_under("/app2", "/app")
    assert not is_under("/app 2/x", "/app")
    assert not is_under("/", "/app")


def test_depth_counts_segments_and_the_root_is_zero() -> None:
    assert depth("/") == 0
    assert depth("/a") == 1
    assert depth("/a/b/c") == 3


def test_ancestors_are_yielded_nearest_first_ending_with_the_root() -> None:
    assert list(ancestors("/a/b/c")) == ["/a/b", "/a", "/"]
    assert list(ancestors("/a")) == ["/"]
    assert list(ancestors("/")) == []


def test_basename_is_the_last_segment() -> None:
    assert basename("/a/b c") == "b c"
    assert basename("/a") == "a"
    assert basename("/") == ""


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("/a/b", "/a/*", True),
        ("/a/b/c", "/a/*", False),
        ("/a/b/c", "/a/**", True),
        ("/a", "/a/**", False),
        ("/a/d", "/a/**/d", True),
        ("/a/b/c/d", "/a/**/d", True),
        ("/a/b", "/a/?", True),
        ("/a/bb", "/a/?", False),
        ("/a/b1", "/a/b[0-9]", True),
        ("/a/bx", "/a/b[0-9]", False),
        ("/a/bx", "/a/b[!0-9]", True),
        ("/a/b1", "/a/b[!0-9]", False),
        ("/a/[b", "/a/[b", True),
        ("/a/x.y", "/a/x.y", True),
        ("/a/xzy", "/a/x.y", False),
        ("/a/x+y", "/a/x+y", True),
        ("/", "/", True),
        ("/app/with space", "/app/with *", True),
        ("/app/ünï", "/app/ü*", True),
    ],
)
def test_glob_match_follows_path_glob_rules(path: str, pattern: str, expected: bool) -> None:
    assert glob_match(path, pattern) is expected


@pytest.mark.parametrize("path", ["/b", "/a/b", "/x/y/b"])
def test_glob_without_leading_slash_matches_at_any_depth(path: str) -> None:
    assert glob_match(path, "b")
    assert glob_match(path, "**/b")


def test_glob_without_leading_slash_matches_whole_segments_only() -> None:
    assert not glob_match("/a/ab", "b")
    assert not glob_match("/a/b/c", "b")


def test_matches_any_is_false_for_no_patterns() -> None:
    assert not matches_any("/a", [])
    assert matches_any("/a", ["/x", "/a"])


def test_is_excluded_matches_the_path_or_any_ancestor() -> None:
    excludes = ["/app/locks"]
    assert is_excluded("/app/locks", excludes)
    assert is_excluded("/app/locks/a/b", excludes)
    assert not is_excluded("/app/locksmith", excludes)
    assert not is_excluded("/app", excludes)
    assert not is_excluded("/app/x", [])


def test_matches_self_or_ancestor_agrees_with_is_excluded() -> None:
    patterns = ["**/secret*", "/root"]
    for path in ["/a/secrets/x", "/a/b", "/root/deep/er", "/", "/rooted"]:
        assert matches_self_or_ancestor(path, patterns) == is_excluded(path, patterns)
    assert matches_self_or_ancestor("/a/secrets/x", patterns)
    assert not matches_self_or_ancestor("/rooted", patterns)
