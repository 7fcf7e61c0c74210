"""Every error m2vsearch reports to users as one clear line (one class per case, as sqlite-utils does).

The CLI prints the message on one line and exits non-zero; the MCP server and the integrations
pass the message on. Catch `M2VSearchError` for all of them.
"""

from __future__ import annotations


class M2VSearchError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""


class ModelError(M2VSearchError):
    """A model folder is missing, incomplete or inconsistent."""


class InvalidArgumentError(M2VSearchError, ValueError):
    """An argument is out of range or of the wrong kind (a mode, a query, k, a filter, a text)."""


class NotFoundError(M2VSearchError, LookupError):
    """A chunk id, a file or lines that the index does not hold."""


class NotServedError(M2VSearchError):
    """A file the index holds that may not be read now (it leads outside the roots, is a link to a
    file the index does not hold, or cannot be opened safely)."""


class IndexFolderError(M2VSearchError):
    """An index is missing, incomplete, or does not fit the model or dims asked for."""


class IndexDamagedError(IndexFolderError):
    """A file of the index cannot be read; the message names it and the fix."""


class IndexLockedError(IndexFolderError):
    """Another process is writing to the index and did not finish within the wait."""


__all__ = ["IndexDamagedError", "IndexFolderError", "IndexLockedError", "InvalidArgumentError", "M2VSearchError",
           "ModelError", "NotFoundError", "NotServedError"]  # fmt: skip
