"""Database URLs as people may see them: no password, wherever the URL carries it."""

from __future__ import annotations

from zkdrift.store.engine import safe_url, url_secrets

URL = (
    "mysql+pymysql://app:userinfo-Pa55@db.internal:3306/zkdrift"
    "?charset=utf8mb4&password=query-Pa55&ssl_key_password=key-Pa55&read_timeout=30"
)


def test_safe_url_masks_the_password_in_the_user_part_and_in_the_query() -> None:
    shown = safe_url(URL)

    for secret in ("userinfo-Pa55", "query-Pa55", "key-Pa55"):
        assert secret not in shown
    assert shown.startswith("mysql+pymysql://app:***@db.internal:3306/zkdrift?")
    assert "charset=utf8mb4" in shown and "read_timeout=30" in shown
    assert "password=redacted" in shown and "ssl_key_password=redacted" in shown


def test_url_secrets_lists_every_credential_the_url_holds_longest_first() -> None:
    assert url_secrets(URL) == ["userinfo-Pa55", "query-Pa55", "key-Pa55"]
    assert url_secrets("sqlite:////var/lib/zkdrift/zkdrift.db") == []
