"""``spinesim score LOG`` and ``spinesim report LOG -o report.html``: grade a logged attempt."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy
from frontends.cli import FiniteFloat, OutputPath, user_text
from simulator.session.actions import LogContents, read_log

out = Console(soft_wrap=True)
_LEVEL_STYLE = {"critical": "bold red", "warning": "yellow", "tip": "cyan", "good": "green"}
_SEVERITY_STYLE = {"critical": "bold red", "major": "yellow", "minor": ""}
_STATUS_STYLE = {"done": "green", "partly": "yellow", "not done": "red"}


def _attempt_options(command):
    command = click.option("--spacing", type=FiniteFloat(min=0, min_open=True),
                           help="Generate a built-in anatomy on this grid (mm) instead of the scenario's.")(command)
    command = click.option("--anatomy", "anatomy_source",
                           help="Use this stored anatomy or anatomy folder instead of the scenario's.")(command)
    command = click.option("--scenario", "scenario_source",
                           help="The scenario (library id or YAML file); default: the one the log names.")(command)
    return click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))(command)


def _load(log: Path, scenario_source: str | None, anatomy_source: str | None, spacing: float | None):
    from scenarios.schema import load_scenario, scenario_directory
    from simulator.session.fold import scenario_of_log

    contents: LogContents = read_log(log)
    if contents.truncated:
        out.print(f"[yellow]warning:[/] {user_text(contents.truncated)}")
    source = scenario_source or contents.header.get("scenario")
    if source is None:
        raise SpinesimError("the log names no scenario", path=log, where="line 1",
                            hint="give the scenario with --scenario ID_OR_FILE")
    scenario = load_scenario(source)
    # The attempt's patient: the one its log's seed drew.
    patient = scenario_of_log(scenario, contents.header, log)
    anatomy = load_anatomy(anatomy_source) if anatomy_source else patient.load_patient(scenario_directory(source),
                                                                                       spacing_mm=spacing)
    return scenario, anatomy, contents


def _in_log(log: Path, run):
    """``run()``, with a replay error located in the log file."""
    try:
        return run()
    except SpinesimError as error:
        if error.path is not None:
            raise
        raise SpinesimError(error.problem, path=log, where=error.where, hint=error.hint) from None


@click.command()
@_attempt_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def score(log: Path, scenario_source: str | None, anatomy_source: str | None, spacing: float | None, as_json: bool) -> None:
    """Grade the attempt in LOG (an action log written by a session)."""
    from scoring.checklist import checklist_points
    from scoring.report import checklist_rows
    from scoring.report import score as score_attempt

    scenario, anatomy, contents = _load(log, scenario_source, anatomy_source, spacing)
    report = _in_log(log, lambda: score_attempt(scenario, anatomy, contents))
    if as_json:
        click.echo(report.model_dump_json(indent=1))
        return
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    out.print(f"{user_text(report.scenario_title)}\ngrade [bold]{report.grade:.0f}[/] / 100  {verdict}")
    for gate in report.gates:
        mark = "[green]✓[/]" if gate.passed else "[red]✗[/]"
        out.print(f"  {mark} {user_text(gate.name)}: {user_text(gate.detail)}", highlight=False)
    if report.flags:
        table = Table("severity", "event", "time (s)", "what happened", title="safety events")
        for flag in report.flags:
            style = _SEVERITY_STYLE[flag.severity]
            table.add_row(f"[{style}]{flag.severity}[/]" if style else flag.severity, user_text(flag.title),
                          "" if flag.t is None else f"{flag.t:.0f}", user_text(flag.message))
        out.print(table)
    table = Table("part", "weight", "score", "points", title="grade")
    for component in report.components:
        table.add_row(component.name, f"{component.weight:.0%}", f"{component.score:.2f}", f"{component.points:.1f}")
    out.print(table)
    table = Table("step", "", "why", title=f"checklist: {checklist_points(report.checklist):g} of "
                                            f"{len(report.checklist)} steps (beside the grade)")
    for step, status, detail, _ in checklist_rows(report):
        table.add_row(step, f"[{_STATUS_STYLE[status]}]{status}[/]", detail)
    out.print(table)
    rating = report.global_rating
    out.print(f"global rating: {rating.total} / {rating.maximum} ("
              + ", ".join(f"{item.title.lower()} {item.score}" for item in rating.items) + ")", highlight=False)
    out.print("feedback:")
    for item in report.feedback:
        out.print(f"  [{_LEVEL_STYLE[item.level]}]•[/] {user_text(item.text)}", highlight=False)


@click.command()
@_attempt_options
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write.")
@click.option("--pixels", type=click.IntRange(128, 1024), default=512, show_default=True,
              help="Size of the fluoroscopy images.")
def report(log: Path, scenario_source: str | None, anatomy_source: str | None, spacing: float | None, output: Path,
           pixels: int) -> None:
    """Write the HTML report of the attempt in LOG: grade, feedback, final images, 3D reveal, tables."""
    from frontends.report import write_report

    scenario, anatomy, contents = _load(log, scenario_source, anatomy_source, spacing)
    result = _in_log(log, lambda: write_report(scenario, anatomy, contents, output, pixels=pixels))
    out.print(f"Wrote {user_text(output)}: grade {result.grade:.0f}, {'pass' if result.passed else 'fail'}")
