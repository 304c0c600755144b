"""The ``spinesim`` command: one entry point, subcommands loaded only when used.

Errors a user can fix (:class:`SpinesimError`) are printed as one line; anything else is logged to
``<spinesim home>/logs`` and reported as an internal error without a traceback on the terminal.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from anatomy_models.errors import SpinesimError

# Subcommand name -> "module:attribute" of its click command; imported lazily so `--help` is fast.
SUBCOMMANDS: dict[str, str] = {
    "anatomy": "frontends.commands.anatomy:anatomy",
    "explain": "frontends.commands.explain:explain",
    "fluoro": "frontends.commands.fluoro:fluoro",
    "report": "frontends.commands.score:report",
    "run": "frontends.commands.run:run",
    "ultrasound": "frontends.commands.ultrasound:ultrasound",
    "scenario": "frontends.commands.scenario:scenario",
    "score": "frontends.commands.score:score",
    "serve": "frontends.commands.serve:serve",
    "users": "frontends.commands.users:users",
}

console = Console(stderr=True)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attribute = SUBCOMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spinesim")
def cli() -> None:
    """spinesim: a simulator for image-guided spine injections.

    Anatomy in LPS millimetres, simulated fluoroscopy and ultrasound, a virtual needle, and scoring.
    """


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, float, str], None]]:
    """A rich progress bar on stderr, handed to library code as a ``(done, total, message)`` callback."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as progress:  # no stray lines in logs and pipes
        task = progress.add_task(description, total=1.0)

        def report(done: float, total: float, message: str = "") -> None:
            progress.update(task, completed=done / total if total else 1.0,
                            description=f"{description}: {message}" if message else description)

        yield report


def log_internal_error(context: str | None = None) -> str:
    """Write the current exception's traceback, after ``context`` (default: the command line), to a
    new file under ``<spinesim home>/logs``; returns its path."""
    from anatomy_models.home import spinesim_home

    logs = spinesim_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text((context or " ".join(sys.argv)) + "\n\n" + traceback.format_exc(), encoding="utf-8")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 user error, 2 usage, 70 internal)."""
    try:
        cli.main(args=argv, prog_name="spinesim", standalone_mode=False)
    except SpinesimError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        return 1
    except click.exceptions.Abort:
        console.print("aborted")
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    except Exception as error:  # noqa: BLE001 - the last line of defence: no traceback for users
        log = log_internal_error()
        console.print(f"[bold red]internal error:[/] {type(error).__name__}: {error}. "
                      f"Details were written to {log}; please report them.", highlight=False, soft_wrap=True)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
