"""Values as a column can hold them, made so before they reach the database.

Mail carries what no column was made for: a NUL byte (PostgreSQL's text cannot
hold one: psycopg refuses the whole statement), a lone surrogate left by
undecodable bytes (not UTF-8: the driver cannot send it), a header longer than
its column (PostgreSQL refuses it; SQLite would keep it).  Any of these made
the whole message fail, and fail again on every retry.  The store boundaries
(the message row, its attachments, audit events) pass their values through
here: NULs removed, what cannot be encoded replaced, strings cut to the
column's length.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit_row", "fit_text"]


def fit_text(value: str, length: int | None = None) -> str:
    """``value`` without NULs or unencodable characters, cut to ``length`` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (surrogateescape'd bytes)
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:length] if length else value


def fit_row(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of a row of ``table`` (a Core table) as its columns can hold them:
    strings fitted (``fit_text``) to their column's length, strings in JSON lists too."""
    columns = table.c
    return {
        key: _fit(value, getattr(columns[key].type, "length", None))
        for key, value in values.items()
    }


def _fit(value: Any, length: int | None) -> Any:
    if isinstance(value, str):
        return fit_text(value, length)
    if isinstance(value, list):
        return [fit_text(item) if isinstance(item, str) else item for item in value]
    return value
