"""The desired-source syntax, URL masking and path mapping: pure functions."""

from __future__ import annotations

import pytest

from zkdrift.errors import InvalidInputError
from zkdrift.policy import DesiredSource, TreePolicy, mask_url, url_credentials
from zkdrift.reconcile.promote import map_path


@pytest.mark.parametrize(
    ("text", "url", "path", "ref"),
    [
        ("https://git.example.com/ops/zk.git//payments/prod?ref=main",
         "https://git.example.com/ops/zk.git", "payments/prod", "main"),
        ("file:///srv/git/zk.git//payments.yaml?ref=v1.4",
         "file:///srv/git/zk.git", "payments.yaml", "v1.4"),
        ("/srv/git/zk//payments?ref=refs/tags/v2", "/srv/git/zk", "payments", "refs/tags/v2"),
        ("git@git.example.com:ops/zk.git//a/b/?ref=release/2026", "git@git.example.com:ops/zk.git",
         "a/b", "release/2026"),
        ("ssh://git@host:2222/ops/zk.git?ref=main", "ssh://git@host:2222/ops/zk.git", "", "main"),
    ],
)  # fmt: skip
def test_a_desired_source_reads_repository_path_and_ref(
    text: str, url: str, path: str, ref: str
) -> None:
    source = DesiredSource.parse(text)

    assert (source.url, source.path, source.ref) == (url, path, ref)
    assert DesiredSource.parse(source.describe()) == source


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/srv/zk//app", "names no branch or tag"),
        ("relative/zk//app?ref=main", "absolute path"),
        ("/srv/zk//../etc?ref=main", "'..'"),
        ("/srv/zk?ref=--upload-pack=x", "not a branch or tag"),
        ("/srv/zk?ref=a..b", "not a branch or tag"),
        ("/srv/zk?ref=main&depth=1", "the only parameter"),
        ("ext::sh -c touch%20x?ref=main", "URL or an absolute path"),
        ("fd::3?ref=main", "remote helpers"),
        ("-oProxyCommand=x//a?ref=main", "URL or an absolute path"),
    ],
)
def test_a_bad_desired_source_is_refused_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        DesiredSource.parse(text)

    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_credentials_are_masked_wherever_the_source_is_shown() -> None:
    source = DesiredSource.parse("https://deploy:t0ken%2Fx@git.example.com/zk.git//app?ref=main")

    assert source.describe() == "https://deploy:***@git.example.com/zk.git//app?ref=main"
    assert mask_url("https://ghp_abc123@github.com/o/r.git") == "https://***@github.com/o/r.git"
    assert mask_url("ssh://git@host/r.git") == "ssh://git@host/r.git"
    assert mask_url("/srv/git/r") == "/srv/git/r"
    assert url_credentials(source.url) == ["t0ken%2Fx", "t0ken/x"]
    policy = TreePolicy().changed("t", desired_source=source.model_dump())
    assert policy.shown()["desired_source"] == source.describe()
    assert "t0ken" not in str(policy.shown())


@pytest.mark.parametrize(
    ("path", "src", "dst", "mapped"),
    [
        ("/stg/app/x", "/stg/app", "/prod", "/prod/x"),
        ("/stg/app", "/stg/app", "/prod", "/prod"),
        ("/x/y", "/", "/prod", "/prod/x/y"),
        ("/prod/x", "/prod", "/", "/x"),
    ],
)
def test_paths_map_from_one_root_onto_another(path: str, src: str, dst: str, mapped: str) -> None:
    assert map_path(path, src, dst) == mapped
