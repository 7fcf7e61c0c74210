"""Keep an index current as files change (`m2vsearch index PATH --watch`; the `watch` extra).

After the first run, file system events (the `watchfiles` library: inotify, FSEvents, or polling)
under the indexed folders are gathered for `debounce` milliseconds of quiet, then one incremental
run brings the index up to date (only added, changed, removed and renamed files are processed).
Events in the index's own folder, lock and staging folders are ignored; a watched folder that is
renamed or deleted is dropped (the run after it drops its files) and the others are still watched. Each run commits in atomic
batches, so an interrupt (Ctrl-C) at any moment leaves a consistent index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from m2vsearch.errors import M2VSearchError


def watch_changes(paths: Sequence[Path], ignored: set[Path], on_change: Callable[[set[str]], None],
                  debounce_ms: int = 1600, stop_event: Any = None) -> None:  # fmt: skip
    """Call `on_change(changed paths)` after each burst of file changes under `paths`, until
    interrupted (KeyboardInterrupt propagates) or `stop_event` is set."""
    try:
        from watchfiles import DefaultFilter, watch
    except ImportError:
        raise M2VSearchError("--watch needs the watch extra: pip install 'm2vsearch[watch]'") from None

    ignored_dirs = [str(p.resolve()) for p in ignored]

    class Filter(DefaultFilter):  # type: ignore[misc]
        def __call__(self, change: Any, path: str) -> bool:
            if any(path == d or path.startswith(d + "/") for d in ignored_dirs):
                return False
            return bool(super().__call__(change, path))

    while True:
        roots = [str(p) for p in paths if p.exists()]  # a folder renamed or deleted is no longer watched
        if not roots:
            raise M2VSearchError("none of the watched folders exists any more; stopped watching")
        try:
            for changes in watch(*roots, watch_filter=Filter(), debounce=debounce_ms, step=100,
                                 stop_event=stop_event, raise_interrupt=True):  # fmt: skip
                on_change({path for _, path in changes})
            return
        except FileNotFoundError:  # a watched folder went away as the watch started
            on_change(set())
