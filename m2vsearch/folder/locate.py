"""Which index a command uses: --index, then M2VSEARCH_INDEX, then the nearest
`indexes/default` in the current folder or one above it (as git finds `.git`), else
`./indexes/default`."""

from __future__ import annotations

from pathlib import Path

from m2vsearch.folder.layout import DB_FILE

DEFAULT_INDEX = Path("indexes") / "default"


def locate_index(given: Path | None, start: Path | None = None) -> tuple[Path, bool]:
    """(index folder, whether it was found above the current folder)."""
    if given is not None:
        return given, False
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_INDEX / DB_FILE).is_file():
            return folder / DEFAULT_INDEX if folder != here else DEFAULT_INDEX, folder != here
    return DEFAULT_INDEX, False
