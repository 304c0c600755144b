"""``spinesim explain SCENARIO -o DIR``: a self-contained page that shows a patient their injection."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from anatomy_models.store import load_anatomy
from frontends.cli import FiniteFloat, OutputPath, user_text
from scenarios.schema import load_scenario, scenario_directory
from simulator.session.actions import read_log

out = Console(soft_wrap=True)


@click.command()
@click.argument("scenario")
@click.option("-o", "--output", type=OutputPath(file_okay=False, path_type=Path), required=True,
              help="Folder for the page (index.html; everything is inside it).")
@click.option("--anatomy", "anatomy_source",
              help="The patient's stored anatomy (e.g. imported from their CT) instead of the scenario's.")
@click.option("--attempt", "attempt_log", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Show the needle of this attempt log instead of the expert path.")
@click.option("--name", help="The patient's name, shown on the page (nothing identifying is shown without it).")
@click.option("--spacing", type=FiniteFloat(min=0, min_open=True),
              help="Generate a built-in anatomy on this grid (mm), e.g. 2 for speed.")
@click.option("--pixels", type=click.IntRange(128, 1024), default=448, show_default=True,
              help="Size of the X-ray pictures.")
def explain(scenario: str, output: Path, anatomy_source: str | None, attempt_log: Path | None, name: str | None,
            spacing: float | None, pixels: int) -> None:
    """Write a patient explanation of SCENARIO (a library id or YAML file) into the folder -o."""
    from frontends.explain import write_explanation

    chosen = load_scenario(scenario)
    log = read_log(attempt_log) if attempt_log is not None else None
    anatomy = load_anatomy(anatomy_source) if anatomy_source else chosen.load_patient(scenario_directory(scenario),
                                                                                      spacing_mm=spacing)
    path = write_explanation(chosen, anatomy, output, log=log, name=name, pixels=pixels)
    out.print(f"Wrote {user_text(path)} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser, "
              "no network needed.")
