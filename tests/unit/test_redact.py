from __future__ import annotations

import hashlib

import pytest

from zkdrift.model import Znode
from zkdrift.paths import matches_self_or_ancestor
from zkdrift.redact import (
    DEFAULT_SECRET_GLOBS,
    Redactor,
    binary_placeholder,
    keyed_digest,
    node_json,
)

KEY = b"installation-key"


def short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def keyed(data: bytes) -> str:
    return keyed_digest(KEY, data)[:8]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(key=KEY)


@pytest.mark.parametrize(
    "path",
    [
        "/app/db/password",
        "/app/db_password",
        "/app/passwd",
        "/app/client_secret",
        "/app/auth/token",
        "/app/refreshTokenTTL",
        "/app/credentials",
        "/app/tls/private_key.pem",
        "/app/apikey",
        "/app/stripe_api_key",
        "/password",
        "/app/db/pwd",
        "/app/smtp_pass",
        "/app/pass",
        "/app/ssh-passphrase",
        "/app/private-key",
        "/app/privatekey",
        "/app/api-key",
        "/app/API_KEY",
        "/app/tls/server.pem",
        "/app/tls/server.key",
        "/app/kafka/keystore",
        "/app/kafka/ssl.truststore.location",
        "/app/kafka/jaas.conf",
        "/app/kafka/sasl.mechanism",
        "/app/Db-PassWord",
    ],
)
def test_default_globs_mark_secret_looking_paths_as_secret(redactor: Redactor, path: str) -> None:
    assert redactor.is_secret(path)


@pytest.mark.parametrize(
    "path",
    [
        "/app/db/host",
        "/app/key",
        "/app/api",
        "/",
        "/app/with space",
        "/app/ünï",
        "/app/passenger_count",
        "/app/keyspace",
    ],
)
def test_default_globs_leave_ordinary_paths_alone(redactor: Redactor, path: str) -> None:
    assert not redactor.is_secret(path)


@pytest.mark.parametrize("path", ["/app/DB_PASSWORD", "/app/Secret", "/app/ApiKey", "/X/TOKEN"])
def test_secret_globs_match_ignoring_case(redactor: Redactor, path: str) -> None:
    assert redactor.is_secret(path)


def test_children_of_a_secret_node_are_secret_too(redactor: Redactor) -> None:
    assert redactor.is_secret("/app/secrets/db")
    assert redactor.is_secret("/app/Credentials/prod/user")


def test_extra_globs_are_added_to_the_defaults() -> None:
    redactor = Redactor(["/app/keys/**", "**/*vault_addr*"])
    assert redactor.globs == (*DEFAULT_SECRET_GLOBS, "/app/keys/**", "**/*vault_addr*")
    assert redactor.is_secret("/app/keys/a")
    assert redactor.is_secret("/app/VAULT_ADDR")  # matched with its separators too
    assert redactor.is_secret("/app/password")


def test_extra_globs_with_uppercase_match_ignoring_case() -> None:
    assert Redactor(["**/*Vault*"]).is_secret("/app/VAULTADDR")


def test_defaults_can_be_left_out() -> None:
    redactor = Redactor(["/only/this"], include_defaults=False)
    assert redactor.is_secret("/only/this")
    assert not redactor.is_secret("/app/password")


def test_a_redactor_without_globs_marks_nothing_secret() -> None:
    redactor = Redactor(include_defaults=False)
    assert not redactor.is_secret("/app/password")
    assert redactor.render("/app/password", b"hunter2") == "hunter2"


def test_render_replaces_a_secret_with_a_keyed_digest_and_length(redactor: Redactor) -> None:
    rendered = redactor.render("/app/db/password", b"hunter2")
    assert rendered == f"<redacted hmac:{keyed(b'hunter2')}… 7 bytes>"
    assert "hunter2" not in rendered
    assert short(b"hunter2") not in rendered  # a plain digest would confirm a guess


def test_secret_digests_depend_on_the_installation_key() -> None:
    one = Redactor(key=b"one").render("/app/token", b"hunter2")
    two = Redactor(key=b"two").render("/app/token", b"hunter2")
    assert one != two
    assert Redactor(key=b"one").render("/app/token", b"hunter2") == one


def test_render_redacts_binary_secrets_as_secrets(redactor: Redactor) -> None:
    data = b"\x00\xff\xfe"
    assert redactor.render("/app/token", data) == f"<redacted hmac:{keyed(data)}… 3 bytes>"


def test_render_redacts_an_empty_secret(redactor: Redactor) -> None:
    assert redactor.render("/app/token", b"") == f"<redacted hmac:{keyed(b'')}… 0 bytes>"


def test_node_json_gives_secret_values_only_a_keyed_digest(redactor: Redactor) -> None:
    secret = node_json(redactor, Znode("/app/token", b"hunter2"))
    plain = node_json(redactor, Znode("/app/host", b"db"))
    assert secret is not None and plain is not None
    assert secret["hmac"] == keyed_digest(KEY, b"hunter2") and "sha256" not in secret
    assert plain["sha256"] == hashlib.sha256(b"db").hexdigest() and "hmac" not in plain


def test_render_says_one_byte_in_the_singular(redactor: Redactor) -> None:
    assert redactor.render("/app/token", b"x").endswith(" 1 byte>")
    one_byte = b"\xff"
    assert redactor.render("/app/bin", one_byte) == f"<binary 1 byte sha256:{short(one_byte)}…>"


def test_render_shows_utf8_text_as_is(redactor: Redactor) -> None:
    assert redactor.render("/app/host", b"db.example.com:3306") == "db.example.com:3306"
    assert redactor.render("/app/ünï cødé", "ünïcødé ✓ 日本".encode()) == "ünïcødé ✓ 日本"


def test_render_keeps_tabs_and_newlines(redactor: Redactor) -> None:
    text = "a=1\n\tb=2\r\n"
    assert redactor.render("/app/conf", text.encode()) == text


def test_render_shows_empty_data_as_empty_text(redactor: Redactor) -> None:
    assert redactor.render("/app/empty", b"") == ""


def test_render_marks_non_utf8_data_as_binary(redactor: Redactor) -> None:
    data = "é".encode("latin-1") + b"abc"
    assert redactor.render("/app/x", data) == f"<binary 4 bytes sha256:{short(data)}…>"


@pytest.mark.parametrize("data", [b"a\x00b", b"\x1b[31mred", b"\x07", b"\xc2\x9b2J", b"x\x7f"])
def test_render_marks_text_with_control_characters_as_binary(
    redactor: Redactor, data: bytes
) -> None:
    assert redactor.render("/app/x", data) == binary_placeholder(data)


def test_render_marks_truncated_utf8_as_binary(redactor: Redactor) -> None:
    data = "日本".encode()[:-1]
    assert redactor.render("/app/x", data).startswith("<binary 5 bytes sha256:")


def test_placeholders_for_equal_values_are_equal_and_for_different_values_differ(
    redactor: Redactor,
) -> None:
    assert redactor.secret_placeholder(b"a") == redactor.secret_placeholder(b"a")
    assert redactor.secret_placeholder(b"a") != redactor.secret_placeholder(b"b")
    assert binary_placeholder(b"\xff") != binary_placeholder(b"\xfe")


def test_is_secret_gives_the_same_answer_when_asked_again(redactor: Redactor) -> None:
    assert redactor.is_secret("/app/password") is True
    assert redactor.is_secret("/app/password") is True
    assert redactor.is_secret("/app/host") is False
    assert redactor.is_secret("/app/host") is False


def test_repr_lists_the_globs() -> None:
    assert repr(Redactor(["/x"], include_defaults=False)) == "Redactor(globs=('/x',))"


def _glob_by_glob(globs: tuple[str, ...], path: str) -> bool:
    """The rule :meth:`Redactor.is_secret` implements, one glob and one ancestor at a time."""
    lowered = tuple(g.lower() for g in globs)
    probe = path.lower()
    return matches_self_or_ancestor(
        probe.translate(str.maketrans("", "", "-_")), lowered
    ) or matches_self_or_ancestor(probe, lowered)


def test_is_secret_agrees_with_matching_each_glob_on_each_ancestor() -> None:
    extra = ("/app/*/Vault/[a-c]*", "/exact/path", "**/x?z", "cfg/**/deep")
    segments = ("app", "db", "Secrets", "pass", "x-y_z", "xyz", "Vault", "cat", "dog", "a.pem")
    paths = ["/", "/exact", "/exact/path", "/exact/path/below", "/cfg/a/b/deep"]
    for first in segments:
        for second in segments:
            for third in ("", "/db_Password", "/plain", "/b", "/deep", "/token-ttl"):
                paths.append(f"/{first}/{second}{third}")
    for globs in (DEFAULT_SECRET_GLOBS + extra, extra, ()):
        # Asked in an order where children come before and after their parents.
        for order in (paths, sorted(paths, reverse=True)):
            redactor = Redactor(globs, include_defaults=False)
            for path in order:
                assert redactor.is_secret(path) is _glob_by_glob(globs, path), (globs, path)


def test_is_secret_forgets_verdicts_beyond_its_cache_and_still_answers() -> None:
    redactor = Redactor(key=KEY)
    paths = [f"/svc-{i}/env/key-{i}" for i in range(60_000)] + ["/svc-7/env/db-password"]
    assert not any(redactor.is_secret(p) for p in paths[:-1])
    assert redactor.is_secret(paths[-1])
    assert redactor.is_secret("/svc-7/env/db-password/child")
