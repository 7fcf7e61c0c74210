"""Errors that m2vsearch reports to users as one clear line."""

from __future__ import annotations


class M2VSearchError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""


class ModelError(M2VSearchError):
    """A model folder is missing, incomplete or inconsistent."""
