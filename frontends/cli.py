"""The ``spinesim`` command: one entry point, subcommands loaded only when used.

Errors a user can fix (:class:`SpinesimError`, and a file or folder the system refuses to read or write)
are printed as one line; anything else is logged to ``<spinesim home>/logs`` and reported as an internal
error without a traceback on the terminal. Text a user supplied (paths, names, values, messages that quote
them) reaches the terminal through :func:`user_text` or as a plain :class:`rich.text.Text`, never as markup.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from anatomy_models.errors import SpinesimError, shorten

# Subcommand name -> ("module:attribute" of its click command, its one-line summary). The commands are
# imported lazily and `--help` lists the summaries without importing them, so it starts fast
# (tests/frontends/test_cli.py checks each summary against its command's own help).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "anatomy": ("frontends.commands.anatomy:anatomy",
                "Anatomies: stored patients (generated or imported) that scenarios run on."),
    "assign": ("frontends.commands.programme:assign",
               "Assign case SCENARIO_ID (a library or served case's id) to a trainee or a cohort."),
    "assignments": ("frontends.commands.programme:assignments",
                    "The cases assigned to TRAINEE, the ones to do first (soonest due first)."),
    "attempts": ("frontends.commands.records:attempts",
                 "The attempts in the database: export them as CSV or as xAPI statements (optionally to an LRS)."),
    "cases": ("frontends.commands.cases:cases",
              "The department's own cases: add a scenario file to the database, list, show, edit and remove them."),
    "cohorts": ("frontends.commands.programme:cohorts",
                "Cohorts of trainees (a year group, a rotation) that cases can be assigned to."),
    "explain": ("frontends.commands.explain:explain",
                "Write a patient explanation of SCENARIO (a library id or YAML file) into the folder -o."),
    "fluoro": ("frontends.commands.fluoro:fluoro",
               "Take a fluoroscopy shot of ANATOMY (a stored anatomy's name or folder) and save it as a PNG."),
    "programme": ("frontends.commands.programme:programme",
                  "Per cohort and case: pass rate, grades, CUSUM, dose and fluoroscopy time, frequent flags."),
    "report": ("frontends.commands.score:report",
               "Write the HTML report of the attempt in LOG: grade, feedback, final images, 3D reveal, tables."),
    "run": ("frontends.commands.run:run",
            "Replay the actions in --actions (or the expert path) on SCENARIO (a library id or YAML file)."),
    "scenario": ("frontends.commands.scenario:scenario",
                 "Training scenarios: list the library, write a new case, validate it, preview its start views."),
    "score": ("frontends.commands.score:score", "Grade the attempt in LOG (an action log written by a session)."),
    "serve": ("frontends.commands.serve:serve",
              "Serve the trainee simulator and the instructors' review at http://HOST:PORT/."),
    "ultrasound": ("frontends.commands.ultrasound:ultrasound",
                   "Render a B-mode image of ANATOMY (a stored anatomy's name or folder; \"default\" if omitted)."),
    "users": ("frontends.commands.users:users", "Add, list and change the passwords of simulator users."),
}

console = Console(stderr=True)


def user_text(value: object) -> str:
    """``value`` as text to put inside a rich markup string: shortened (:func:`anatomy_models.errors.shorten`)
    and with its square brackets escaped, so that ``[/]``, ``[red]`` or ``[link=...]`` in a path, a name
    or a message print as typed instead of crashing the printer or restyling the line.

    Examples
    --------
    >>> print(user_text("scans/[red]x[/].nrrd"))
    scans/\\[red]x\\[/].nrrd
    """
    return escape(shorten(str(value)))


def error_line(label: str, message: object) -> Text:
    """``label`` in bold red, then ``message`` as plain text (never read as markup)."""
    return Text.assemble((label, "bold red"), " ", shorten(str(message)))


# Seeds on the command line are unsigned 32-bit integers, as in scenarios and action logs.
SEED = click.IntRange(0, 2**32 - 1)


class FiniteFloat(click.FloatRange):
    """A float option that must be a finite number (click's own float reads ``nan`` and ``inf``), within
    the optional bounds of :class:`click.FloatRange`."""

    name = "finite float"

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class OutputPath(click.Path):
    """A ``-o`` path the command will write: refused at once (before any long work) where it cannot be,
    because a part of its folder is a file, it is a folder where a file is wanted (or the reverse), or
    the place is not writable. Missing folders are fine: the writers create them."""

    def convert(self, value, param, ctx) -> Path:
        path = Path(super().convert(value, param, ctx))
        problem = _unwritable(path, file_okay=self.file_okay, dir_okay=self.dir_okay)
        if problem:
            self.fail(f"{path}: {problem}", param, ctx)
        return path


def _unwritable(path: Path, *, file_okay: bool, dir_okay: bool) -> str | None:
    """Why ``path`` (a file and/or a folder, as allowed) cannot be written, or None."""
    if path.exists():
        if path.is_dir() and not dir_okay:
            return "is a folder; give a file name"
        if not path.is_dir() and not file_okay:
            return "is a file; give a folder name"
        return None if os.access(path, os.W_OK) else "is read-only; choose a place you may write to"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a folder; choose an output inside a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the folder {parent} is read-only; choose a place you may write to"
    return None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module_name, attribute = SUBCOMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the summaries: no subcommand is imported."""
        limit = formatter.width - 6 - max(len(name) for name in SUBCOMMANDS)
        rows = [(name, click.Command(name, help=summary).get_short_help_str(limit))
                for name, (_, summary) in sorted(SUBCOMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
        task = progress.add_task(user_text(description), total=1.0)  # file names may hold "[/]"

        def report(done: float, total: float, message: str = "") -> None:
            progress.update(task, completed=done / total if total else 1.0,
                            description=user_text(f"{description}: {message}" if message else description))

        yield report


def log_internal_error(context: str | None = None, argv: list[str] | None = None) -> str:
    """Write the current exception's traceback, after ``context`` (default: the subcommand run), to a new
    file under ``<spinesim home>/logs``; returns its path.

    What a user typed may name a patient (a folder called after them), so the log keeps no command line:
    only the subcommand's words, and exception messages without the values of ``argv`` (default: this
    process's arguments) or any absolute path.
    """
    from anatomy_models.home import spinesim_home

    arguments = sys.argv[1:] if argv is None else argv
    words = _command_words(arguments)
    heading = context or " ".join(["spinesim", *words, "(arguments not logged)"])
    logs = spinesim_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(heading + "\n\n" + _redacted_traceback(arguments[len(words):]), encoding="utf-8")
    return str(path)


def _command_words(argv: list[str]) -> list[str]:
    """The subcommand words that ``argv`` starts with (``["anatomy", "import"]``)."""
    words, command = [], cli
    for word in argv:
        try:
            found = command.get_command(click.Context(command), word) if isinstance(command, click.Group) else None
        except Exception:  # noqa: BLE001 - a subcommand that cannot even be imported ends the words
            found = None
        if found is None:
            break
        words.append(word)
        command = found
    return words


# A path starting with a slash (or a drive letter), not part of a word: "/home/x/CT", "C:\\data".
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[\\/][^\s'\"]*")


def _redacted_traceback(argv: list[str]) -> str:
    """The current exception's traceback; its messages lose the values in ``argv`` (``--labels=x`` gives
    ``x``), their path parts and every absolute path. Code lines stay: they hold no user input."""
    values = [argument.split("=", 1)[-1] for argument in argv if not argument.startswith("-") or "=" in argument]
    secrets = sorted({part for value in values for part in (value, *re.split(r"[\\/]", value)) if len(part) > 2},
                     key=len, reverse=True)

    def redact(text: str) -> str:
        text = _ABSOLUTE_PATH.sub("<path>", text)
        for secret in secrets:
            text = text.replace(secret, "<argument>")
        return text

    chain: traceback.TracebackException | None = traceback.TracebackException(*sys.exc_info())
    lines: list[str] = []
    while chain is not None:  # from the last exception back to the first, as Python prints them in reverse
        lines[:0] = ["Traceback (most recent call last):\n", *chain.stack.format(),
                     *(redact(line) for line in chain.format_exception_only())]
        if chain.__cause__ is not None:
            chain, link = chain.__cause__, "The above exception was the direct cause of the following exception:"
        elif chain.__context__ is not None and not chain.__suppress_context__:
            chain, link = chain.__context__, "During handling of the above exception, another exception occurred:"
        else:
            chain = None
        if chain is not None:
            lines[:0] = [f"\n{link}\n\n"]
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 user error, 2 usage, 70 internal)."""
    try:
        cli.main(args=argv, prog_name="spinesim", standalone_mode=False)
    except SpinesimError as error:
        console.print(error_line("error:", error), highlight=False, soft_wrap=True)
        return 1
    except OSError as error:
        if error.filename is None:
            return _internal_error(error, argv)
        # A file or folder the system refuses (read-only, full disk, a file where a folder should be): the
        # user can fix the place, so it is their error, named, without a log.
        console.print(error_line("error:", f"{error.filename}: {error.strerror or error}. Check that the place "
                                           "exists, is what the command expects and that you may read and write it"),
                      highlight=False, soft_wrap=True)
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
        return _internal_error(error, argv)
    return 0


def _internal_error(error: BaseException, argv: list[str] | None) -> int:
    """Log the exception being handled (without the values in ``argv``) and say where; the exit status of an
    internal error."""
    log = log_internal_error(argv=argv)
    console.print(error_line("internal error:", f"{type(error).__name__}: {error}. Details were written to {log}; "
                                                "please report them."), highlight=False, soft_wrap=True)
    return 70


if __name__ == "__main__":
    sys.exit(main())
