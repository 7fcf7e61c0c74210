"""Text helpers shared by every layer: UTF-8 checks, printable names, timestamps."""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> str:
    """The current UTC time, ISO 8601 to the second (as meta and files rows store it)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def printable(text: str) -> str:
    """`text` safe to print and store as UTF-8: undecodable bytes of a file name (surrogate
    escapes) shown as \\xNN."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """Whether `text` can be stored as UTF-8 (a name or argument with undecodable bytes cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
