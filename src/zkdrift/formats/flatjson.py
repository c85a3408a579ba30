"""A plain JSON mapping of absolute path to value, for hand-written desired states::

    {
      "/app/name": "payments",
      "/app/logo": {"base64": "iVBORw0KGgo="},
      "/app/empty": null
    }

A string value is stored as its UTF-8 bytes, ``{"base64": "..."}`` gives raw
bytes, and ``null`` means empty data. Exactly the listed paths become nodes.
"""

from __future__ import annotations

from zkdrift.model import TreeState

from ._common import StateBuilder, b64decode_strict
from ._json import JsonDocument, parse_json
from .errors import FormatError


def _value_bytes(doc: JsonDocument, builder: StateBuilder, path: str, value: object) -> bytes:
    builder.check_path(path, line=None)
    text = builder.text_bytes(value, line=None, entry=path)
    if text is not None:
        return text
    if isinstance(value, dict) and set(value) == {"base64"}:
        try:
            return b64decode_strict(value["base64"])
        except ValueError as exc:
            raise doc.error(f"base64: {exc}", path, "base64", entry=path) from None
    raise builder.error(
        f'value must be a string, {{"base64": "..."}} or null, got {type(value).__name__}',
        line=None,
        entry=path,
    )


def flat_json_from_document(doc: JsonDocument, *, root: str) -> TreeState:
    top = doc.value
    if not isinstance(top, dict):
        raise doc.error(f"expected a JSON object mapping paths to values, got {type(top).__name__}")
    builder = StateBuilder(doc.source, root)
    for path, value in top.items():
        try:
            builder.add(path, _value_bytes(doc, builder, path, value), line=None)
        except FormatError as exc:
            raise doc.locate(exc, path) from None
    return builder.build()


def load_flat_json(data: bytes, *, root: str, source: str = "<json>") -> TreeState:
    """Read a plain ``{"/abs/path": value}`` JSON mapping as a desired state."""
    return flat_json_from_document(parse_json(data, source), root=root)
