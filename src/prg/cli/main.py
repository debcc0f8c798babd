"""The ``prg`` command line: thin shells over the library (no logic that a test could not reach directly)."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from prg import __version__
from prg.cli import chat as chat_cmd
from prg.cli import data as data_cmd
from prg.cli import demo as demo_cmd
from prg.cli import eval as eval_cmd
from prg.cli import index as index_cmd
from prg.cli import model as model_cmd
from prg.cli import predict as predict_cmd
from prg.cli import serve as serve_cmd
from prg.cli import train as train_cmd
from prg.cli.help import HelpGroup

app = typer.Typer(
    name="prg",
    help="Professional Reasoning Grasping: retrieve the rules, answer with citations, grasp the right tool.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=HelpGroup,
    rich_markup_mode=None,  # click's plain help: it wraps what rich's panels cut with "…" (prg.cli.help)
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(index_cmd.app, name="index")
app.add_typer(eval_cmd.app, name="eval")
app.command("chat")(chat_cmd.chat)
app.command("demo")(demo_cmd.demo)
app.command("merge")(model_cmd.merge)
app.command("predict")(predict_cmd.predict)
app.command("serve")(serve_cmd.serve)
app.command("train")(train_cmd.train)

err_console = Console(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """PRG command line."""


def main() -> None:
    """Entry point: run the app; turn any unexpected exception into a one-line error, not a traceback.

    Set ``PRG_DEBUG=1`` to see the traceback.
    """
    try:
        app()  # standalone mode: typer/click print usage errors themselves and exit with status 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if os.environ.get("PRG_DEBUG"):
            raise
        err_console.print(f"[red]error:[/red] {escape(f'{type(e).__name__}: {e}')}", highlight=False)
        err_console.print("(set PRG_DEBUG=1 for the traceback)", style="dim")
        sys.exit(1)


if __name__ == "__main__":
    main()
