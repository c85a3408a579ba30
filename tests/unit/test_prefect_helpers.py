"""Pure helpers of the Prefect layer: artifact keys and which failures are retried."""

from __future__ import annotations

from kazoo.exceptions import ConnectionLoss
from sqlalchemy.exc import OperationalError

from zkdrift.errors import DatabaseError, InvalidInputError
from zkdrift.model import slug
from zkdrift.tasks.retry import is_transient
from zkdrift.tasks.runtime import artifact_key


def test_artifact_keys_are_lowercase_letters_digits_and_dashes_and_distinct_per_tree() -> None:
    names = ["billing", "Billing", "search.app", "search_app", "A--B", "___"]

    keys = [artifact_key("drift-paths", name) for name in names]

    assert keys[0] == "drift-paths-billing"
    assert len(set(keys)) == len(names)
    for key in keys:
        assert key == key.lower()
        assert all(c.isalnum() or c == "-" for c in key)
        assert "--" not in key.removeprefix("drift-paths-") and not key.endswith("-")
    assert slug("billing") == "billing"


def test_transient_errors_are_recognised_through_the_cause_chain() -> None:
    wrapped = DatabaseError("cannot reach database")
    wrapped.__cause__ = OperationalError("SELECT 1", {}, Exception("gone away"))

    assert is_transient(ConnectionLoss())
    assert is_transient(wrapped)
    assert not is_transient(DatabaseError("schema is at nothing"))
    assert not is_transient(InvalidInputError("bad path"))
    assert not is_transient(ValueError("bug"))
