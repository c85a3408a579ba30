from __future__ import annotations

import hashlib

import pytest

from zkdrift.redact import (
    DEFAULT_SECRET_GLOBS,
    Redactor,
    binary_placeholder,
    secret_placeholder,
)


def short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


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
    ],
)
def test_default_globs_mark_secret_looking_paths_as_secret(redactor: Redactor, path: str) -> None:
    assert redactor.is_secret(path)


@pytest.mark.parametrize(
    "path",
    ["/app/db/host", "/app/pass", "/app/key", "/app/api", "/", "/app/with space", "/app/ünï"],
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
    redactor = Redactor(["/app/keys/**", "*.pem"])
    assert redactor.globs == (*DEFAULT_SECRET_GLOBS, "/app/keys/**", "*.pem")
    assert redactor.is_secret("/app/keys/a")
    assert redactor.is_secret("/tls/server.PEM")
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


def test_render_replaces_a_secret_with_digest_and_length(redactor: Redactor) -> None:
    rendered = redactor.render("/app/db/password", b"hunter2")
    assert rendered == f"<redacted sha256:{short(b'hunter2')}… 7 bytes>"
    assert "hunter2" not in rendered


def test_render_redacts_binary_secrets_as_secrets(redactor: Redactor) -> None:
    data = b"\x00\xff\xfe"
    assert redactor.render("/app/token", data) == f"<redacted sha256:{short(data)}… 3 bytes>"


def test_render_redacts_an_empty_secret(redactor: Redactor) -> None:
    assert redactor.render("/app/token", b"") == f"<redacted sha256:{short(b'')}… 0 bytes>"


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


def test_placeholders_for_equal_values_are_equal_and_for_different_values_differ() -> None:
    assert secret_placeholder(b"a") == secret_placeholder(b"a")
    assert secret_placeholder(b"a") != secret_placeholder(b"b")
    assert binary_placeholder(b"\xff") != binary_placeholder(b"\xfe")


def test_is_secret_gives_the_same_answer_when_asked_again(redactor: Redactor) -> None:
    assert redactor.is_secret("/app/password") is True
    assert redactor.is_secret("/app/password") is True
    assert redactor.is_secret("/app/host") is False
    assert redactor.is_secret("/app/host") is False


def test_repr_lists_the_globs() -> None:
    assert repr(Redactor(["/x"], include_defaults=False)) == "Redactor(globs=('/x',))"
