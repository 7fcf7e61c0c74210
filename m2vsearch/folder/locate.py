"""Which index a command uses: --index, then M2VSEARCH_INDEX, then the nearest
`indexes/default` in the current folder or one above it (as git finds `.git`), else
`./indexes/default`."""

from __future__ import annotations

import errno
from pathlib import Path

from m2vsearch.errors import IndexFolderError
from m2vsearch.folder.layout import DB_FILE
from m2vsearch.text import printable

DEFAULT_INDEX = Path("indexes") / "default"


def locate_index(given: Path | None, start: Path | None = None) -> tuple[Path, bool]:
    """(index folder, whether it was found above the current folder); a path that cannot be
    resolved (a symlink loop) is refused with one line."""
    if given is not None:
        return _resolvable(given), False
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_INDEX / DB_FILE).is_file():
            return _resolvable(folder / DEFAULT_INDEX if folder != here else DEFAULT_INDEX), folder != here
    return _resolvable(DEFAULT_INDEX), False


def _resolvable(folder: Path) -> Path:
    """`folder`, once its symlinks are known to lead somewhere (not round in a loop)."""
    try:
        Path(folder).expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # Python < 3.13: RuntimeError("Symlink loop ..."); later OSError(ELOOP)
        loop = isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP
        reason = "is a symlink loop" if loop else f"cannot be resolved ({exc})"
        raise IndexFolderError(f"the index folder {printable(str(folder))} {reason}; give another --index") from None
    return folder
