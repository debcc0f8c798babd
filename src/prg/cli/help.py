"""Help pages that hide nothing at 80 columns: click's plain layout, with whole command descriptions.

typer's rich panels squeeze their option table into the terminal and end what does not fit in "…"
(``--industry-fil…`` at 80 columns, more at 70), so ``prg`` asks typer for click's plain layout
(``rich_markup_mode=None`` on the root app, which every sub-command inherits): long option names get a line of
their own and every description wraps. The one thing click still cuts is a command's description in a group's
list ("Make scenes, index the regulations, answer each..."); :class:`HelpGroup` lists the whole first sentence.
"""

from __future__ import annotations

import sys
from typing import Any

from typer.core import TyperGroup

__all__ = ["HelpGroup"]


class HelpGroup(TyperGroup):
    """A command group whose help lists each command with its first sentence whole, wrapped (``cls=`` of every
    ``typer.Typer`` in ``prg.cli``)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
