"""The command group: everyday search commands listed apart from model building, each module
imported only when one of its commands runs (or --help lists them), so `query` starts fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click

SECTIONS = {"search": "Search your files", "models": "Build and measure models"}
# Which module defines each command (importing it registers its commands on `cli`).
COMMAND_MODULES = {
    **dict.fromkeys(("index", "query", "info", "patterns", "mcp"), "m2vsearch.cli.everyday"),
    "serve": "m2vsearch.cli.serve",
    **dict.fromkeys(("distill", "soup", "rotate", "calibrate", "featurise", "eval"), "m2vsearch.cli.models"),
    "train": "m2vsearch.cli.train",
}


class SectionedGroup(click.Group):
    """A click group whose --help lists commands under section headings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sections: dict[str, str] = {}

    def command(self, *args: Any, section: str = "search", **kwargs: Any) -> Callable[..., click.Command]:  # type: ignore[override]
        decorator = super().command(*args, **kwargs)

        def register(function: Callable[..., Any]) -> click.Command:
            command = decorator(function)
            self.sections[command.name or function.__name__] = section
            return command

        return register

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for section, title in SECTIONS.items():
            rows = []
            for name in self.list_commands(ctx):
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden and self.sections.get(name, "search") == section:
                    rows.append((name, command.get_short_help_str(limit=formatter.width - 22)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


@click.group(cls=SectionedGroup)
@click.version_option(package_name="m2vsearch")
def cli() -> None:
    """Semantic search over your files with a static embedding model.

    Start with `m2vsearch index FOLDER`, then `m2vsearch query "TEXT"`."""
