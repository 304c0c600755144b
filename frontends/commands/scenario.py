"""``spinesim scenario``: list, write, check and preview training scenarios, and export their schema."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from frontends.cli import FiniteFloat, OutputPath, error_line, user_text
from scenarios.schema import PROCEDURES, library_scenarios, load_scenario, scenario_directory, scenario_json_schema

out = Console(soft_wrap=True)

# What ``scenario new`` fills in per procedure: target block, needle block, DSA (clinical.md §2.6).
_TEMPLATE_PARTS = {
    "interlaminar_epidural": ("{level: L4-L5, side: left}        # side: left, right or midline",
                              "{kind: tuohy, gauge: 20, length_in: 3.5}   # clinical.md §2.1", "false"),
    "transforaminal_epidural": ("{level: L4-L5, side: left, approach: subpedicular}   # or approach: kambin",
                                "{kind: quincke, gauge: 22, length_in: 3.5}  # 5 in for obese patients, §2.2", "true"),
    "facet_intra_articular": ("{level: L4-L5, side: left}", "{kind: quincke, gauge: 22, length_in: 3.5}  # §2.3", "false"),
    "medial_branch_block": ("{nerve: L4 medial branch, side: left}   # or e.g. 'L5 dorsal ramus'",
                            "{kind: quincke, gauge: 22, length_in: 3.5}  # §2.4", "false"),
    "radiofrequency_ablation": ("{nerve: L4 medial branch, side: left}   # L3/L4 medial branch or 'L5 dorsal ramus'",
                                "{kind: rf_cannula, gauge: 18, length_mm: 100, active_tip_mm: 10}  # §2.5", "false"),
    "sacroiliac_joint_injection": ("{side: left}   # the joint; its caudal third is the target",
                                   "{kind: quincke, gauge: 22, length_in: 3.5}  # Dussault 2000", "false"),
    "caudal_epidural": ("{side: midline}   # through the sacral hiatus",
                        "{kind: quincke, gauge: 22, length_in: 3.5}", "false"),
}

TEMPLATE = """\
# A spinesim training scenario. Check it with `spinesim scenario validate {file}` and look at its
# start views with `spinesim scenario preview {file} -o preview/`. Editors can check fields with the
# JSON Schema from `spinesim scenario schema -o scenario.schema.json`.
id: {id}                       # lower-case letters, digits, '-' and '_'
title: A short title the trainee sees in the list
brief: >-
  What the trainee is told: the patient, the complaint, the task.
objectives:                    # what the case teaches, one sentence each
  - First learning objective.
difficulty: intermediate       # beginner, intermediate or advanced
# The patient: exactly one of
#   builtin: default                   the built-in parametric spine
#   generator: {{bmi: 32, degeneration: 1.5, ...}}   the parametric spine with other parameters
#   stored: NAME                       a stored anatomy (spinesim anatomy list)
#   path: FOLDER                       a stored anatomy folder
#   images: ct/                        CT images (DICOM folder, .nii.gz, .nrrd), paths relative to this file,
#     labels: labels.nii.gz            ... with a label map,
#     label_format: totalsegmentator   ... whose ids need translating (totalsegmentator, verse, table:FILE)
#   meshes: meshes/                    one mesh per structure (+ labels: names.yaml, mesh_units: mm)
anatomy: {{builtin: default}}
procedure: {procedure}
target: {target}
needle: {needle}
imaging: {{fluoroscopy: true, dsa: {dsa}, ultrasound: false}}
start:
  carm: {{setup: AP, primary_deg: 0, secondary_deg: 0}}   # LAO +, cranial + (degrees)
limits: {{shots: 15, fluoro_seconds: 36, time_s: 600}}   # over a limit is a minor safety flag
rubric:
  weights: {{accuracy: 40, safety: 25, efficiency: 20, technique: 15}}
  tolerances: {{depth_mm: 2, bone_contacts: 3, path_ratio: 1.5}}   # tip_mm, redirects: procedure defaults
  pass_gates: {{min_score: 70, in_zone: true, max_major_flags: 0, contrast_check: live}}   # live, dsa or none
hints:                         # shown one at a time when the trainee asks
  - First hint.
patient:                       # plain language, for the patient explanation
  explanation: >-
    What the procedure is and why it is done, in words a patient understands.
seed: 0                        # seeds every random choice of the attempt
"""


@click.group()
def scenario() -> None:
    """Training scenarios: list the library, write a new case, validate it, preview its start views."""


@scenario.command("list")
def list_scenarios() -> None:
    """The built-in scenarios."""
    table = Table("id", "procedure", "target", "difficulty", "title")
    for item in library_scenarios().values():
        target = item.target.level or item.target.nerve or "sacrum"
        table.add_row(item.id, item.procedure, f"{target} {item.target.side}", item.difficulty, user_text(item.title))
    out.print(table)


@scenario.command()
@click.argument("procedure", type=click.Choice(PROCEDURES))
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="The YAML file to write.")
@click.option("--id", "scenario_id", help="The scenario's id (default: the file name).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new(procedure: str, output: Path, scenario_id: str | None, force: bool) -> None:
    """Write a commented scenario template for PROCEDURE."""
    if output.exists() and not force:
        raise SpinesimError("the file exists", path=output, hint="choose another name or add --force")
    target, needle, dsa = _TEMPLATE_PARTS[procedure]
    text = TEMPLATE.format(file=output.name, id=scenario_id or output.stem.lower().replace(" ", "-"),
                           procedure=procedure, target=target, needle=needle, dsa=dsa)
    with atomic_path(output) as temporary:
        temporary.write_text(text, encoding="utf-8")
    out.print(f"Wrote {user_text(output)}; edit it, then run `spinesim scenario validate {user_text(output)}`.")


@scenario.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--solve", is_flag=True, help="Also load each anatomy and check that an expert path reaches the target.")
@click.option("--spacing", type=FiniteFloat(min=0, min_open=True),
              help="With --solve: generate built-in anatomies on this grid (mm).")
def validate(files: tuple[Path, ...], solve: bool, spacing: float | None) -> None:
    """Check scenario FILES; errors name the YAML line and field."""
    failed = 0
    for path in files:
        try:
            checked = load_scenario(path)
            note = _solve(checked, path, spacing) if solve else ""
        except SpinesimError as error:
            failed += 1
            out.print(error_line("invalid:", error), highlight=False)
            continue
        out.print(f"[green]ok:[/] {user_text(path)}: {checked.id} ({checked.procedure}){user_text(note)}",
                  highlight=False)
    if failed:
        raise SpinesimError(f"{failed} of {len(files)} scenario(s) are invalid",
                            hint="each 'invalid:' line above names the file, the line and the field, and why")


def _solve(checked, path: Path, spacing: float | None) -> str:
    from simulator.case.planner import plan_trajectory
    from simulator.session.fold import Session

    try:
        anatomy = checked.load_patient(scenario_directory(path), spacing_mm=spacing)
    except SpinesimError as error:
        raise SpinesimError(f"its anatomy cannot be loaded: {error}", path=path,
                            where=f"field 'anatomy.{checked.anatomy.kind()}'") from None
    session = Session(checked, anatomy)
    trajectory = plan_trajectory(session.tracer, session.target, session.spec)
    return f"; expert path {trajectory.depth_mm:.0f} mm deep, {trajectory.angle_from_textbook_deg:.0f} deg from textbook"


@scenario.command()
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path),
              help="Write the schema here (default: print it).")
def schema(output: Path | None) -> None:
    """The JSON Schema of scenario files, for editors."""
    text = json.dumps(scenario_json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    with atomic_path(output) as temporary:
        temporary.write_text(text, encoding="utf-8")
    out.print(f"Wrote {user_text(output)}")


@scenario.command()
@click.argument("source")
@click.option("-o", "--output", type=OutputPath(file_okay=False, path_type=Path), required=True,
              help="Folder for the PNG images.")
@click.option("--spacing", type=FiniteFloat(min=0, min_open=True),
              help="Generate built-in anatomies on this grid (mm), e.g. 2 for speed.")
@click.option("--pixels", type=click.IntRange(64, 2048), default=512, show_default=True, help="Image size.")
def preview(source: str, output: Path, spacing: float | None, pixels: int) -> None:
    """Render the start views of SOURCE (a library id or YAML file) with the target overlaid."""
    from frontends.pictures.preview import preview_images

    chosen = load_scenario(source)
    anatomy = chosen.load_patient(scenario_directory(source), spacing_mm=spacing)
    for path in preview_images(chosen, anatomy, output, pixels=pixels):
        out.print(f"Wrote {user_text(path)}")
