"""The m2vsearch command line: everyday commands (`everyday.py`) and model building (`models.py`)."""

from __future__ import annotations

import logging
import sqlite3
import sys

import click

from m2vsearch.cli.group import cli  # its commands are imported when they run (group.COMMAND_MODULES)
from m2vsearch.cli.output import safe
from m2vsearch.errors import M2VSearchError

__all__ = ["cli", "main"]


class _SafeFormatter(logging.Formatter):
    """Log lines with control and format characters escaped (`output.safe`): a file name in a
    warning cannot drive the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return safe(super().format(record))


def _show_warnings() -> None:
    """The library logs warnings (it never prints); the CLI shows each as one line on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(_SafeFormatter("m2vsearch: warning: %(message)s"))
    logger = logging.getLogger("m2vsearch")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main() -> None:
    """Entry point: run the CLI, turning m2vsearch errors into one line and exit code 1."""
    _show_warnings()
    try:
        code = cli.main(standalone_mode=False, prog_name="m2vsearch", complete_var="_M2VSEARCH_COMPLETE")
    except M2VSearchError as exc:
        click.echo(f"error: {safe(str(exc))}", err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.message = safe(exc.message)  # e.g. a path that does not exist, named as given
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo(safe(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), err=True)
        sys.exit(1)
    except sqlite3.Error as exc:  # a safety net: index code turns these into clearer errors
        click.echo(f"error: SQLite: {safe(str(exc))}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
