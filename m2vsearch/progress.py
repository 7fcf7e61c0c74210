"""The progress-callback shape shared by long operations (distil, train, index, eval)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# progress(items, total, label) -> the items, wrapped in a progress bar (or not)
Progress = Callable[[Iterable[Any], int, str], Iterable[Any]]


def no_progress(items: Iterable[Any], total: int, label: str) -> Iterable[Any]:
    """A Progress that shows nothing."""
    return items
