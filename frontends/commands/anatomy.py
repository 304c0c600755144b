"""``spinesim anatomy``: list, inspect, import and export anatomies."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anatomy_models.sources import describe_source, import_anatomy
from anatomy_models.store import (anatomy_directory, load_anatomy, save_anatomy, stored_anatomy_names,
                                  stored_anatomy_summary)
from frontends.cli import SEED, FiniteFloat, OutputPath, progress_bar, user_text

out = Console()


@click.group()
def anatomy() -> None:
    """Anatomies: stored patients (generated or imported) that scenarios run on."""


@anatomy.command("list")
def list_command() -> None:
    """List the stored anatomies."""
    names = stored_anatomy_names()
    if not names:
        out.print("No stored anatomies yet. Import one with `spinesim anatomy import PATH -o NAME`.")
        return
    table = Table("name", "source", "structures", "landmarks")
    for name in names:
        summary = stored_anatomy_summary(name)
        table.add_row(*(user_text(summary[key]) for key in ("name", "source", "structures", "landmarks")))
    out.print(table)


@anatomy.command("info")
@click.argument("source")
def info_command(source: str) -> None:
    """Describe SOURCE: a stored anatomy's name, an anatomy folder, or an image file or folder."""
    path = Path(source)
    if not path.exists() and source in stored_anatomy_names():
        path = anatomy_directory(source)
    table = Table(show_header=False)
    table.add_column()
    table.add_column(overflow="fold")  # long values (DICOM UIDs) wrap whole instead of being cut
    for key, value in describe_source(path).items():
        table.add_row(user_text(key), user_text(value))
    out.print(table)


@anatomy.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "name", required=True, help="Name to store the anatomy under.")
@click.option("--labels", type=click.Path(exists=True, path_type=Path),
              help="Label map for a CT (NIfTI, NRRD, .seg.nrrd or a TotalSegmentator folder); "
                   "for meshes, a YAML table mesh name -> structure.")
@click.option("--label-format", help="How to read the label ids: totalsegmentator[:v1|:v2], verse or table:FILE "
                                     "(a YAML/JSON list of {id, name, tissue}). Not needed for .seg.nrrd files, "
                                     "TotalSegmentator folders, or NIfTI files with their own label table.")
@click.option("--spacing", type=FiniteFloat(min=0.05), help="Voxel size in mm: the grid of voxelised meshes "
                                                                 "(default 1), or resample a volume to it.")
@click.option("--mesh-units", type=click.Choice(["mm", "cm", "m"]), default="mm", show_default=True,
              help="Unit of mesh coordinates.")
@click.option("--series", "series_uid", default=None,
              help="DICOM series to import (its UID, or its number from `spinesim anatomy info`).")
@click.option("--readable-only", is_flag=True,
              help="DICOM: skip subfolders that cannot be read and damaged files (each counted in a warning) "
                   "instead of refusing the folder; the series must still have every slice.")
def import_command(source: Path, name: str, labels: Path | None, label_format: str | None,
                   spacing: float | None, mesh_units: str, series_uid: str | None, readable_only: bool) -> None:
    """Import SOURCE (an image, segmentation or mesh file or folder) and store it as anatomy NAME."""
    with progress_bar(f"importing {source.name}") as report:
        imported = import_anatomy(source, series_uid=series_uid, labels=labels, label_format=label_format,
                                  spacing_mm=spacing, mesh_units=mesh_units, progress=report,
                                  readable_only=readable_only)
    for warning in imported.metadata.get("import_warnings", []):
        out.print(f"[yellow]warning:[/] {user_text(warning)}", highlight=False)
    path = save_anatomy(imported, name)
    for note in imported.metadata.get("import_notes", []):
        out.print(f"note: {user_text(note)}", highlight=False)
    out.print(f"Stored anatomy [bold]{user_text(name)}[/] in {user_text(path)}")


@anatomy.command("export")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["dicom", "nifti", "nrrd", "stl", "glb"]), default="nrrd",
              show_default=True,
              help="dicom: a folder of de-identified CT slices; nifti / nrrd: CT, labels and labels.json (nrrd labels are a 3D Slicer .seg.nrrd); "
                   "stl: one surface per structure (3D printing); glb: one file for 3D viewers, a node per structure.")
@click.option("-o", "--output", type=OutputPath(path_type=Path), required=True,
              help="Output folder, or for nifti/nrrd the CT's file name (labels are written beside it), or for glb the .glb file.")
@click.option("--parts", is_flag=True, help="stl / glb: a surface per part of a bone (pedicle, lamina, ...), not per whole bone.")
def export_command(name: str, fmt: str, output: Path, parts: bool) -> None:
    """Export stored anatomy NAME to OUTPUT (LPS millimetres)."""
    from anatomy_models.exports import export_anatomy, export_warnings

    loaded = load_anatomy(name)
    with progress_bar(f"exporting {name}") as report:
        written = export_anatomy(loaded, fmt, output, parts=parts, progress=report)
    for warning in export_warnings(loaded, fmt):
        out.print(f"[yellow]warning:[/] {user_text(warning)}", highlight=False)
    out.print(f"Wrote {len(written)} file(s) to {user_text(output)}")


def _parse_parameter(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` from the command line, with VALUE read as YAML (numbers, true/false, words)."""
    import yaml

    from anatomy_models.errors import SpinesimError

    key, separator, value = text.partition("=")
    if not separator or not key:
        raise SpinesimError(f"--param expects KEY=VALUE, got {text!r}", hint="e.g. --param scoliosis_cobb_deg=20")
    return key.strip().replace("-", "_"), yaml.safe_load(value)


@anatomy.command("generate")
@click.option("-o", "--output", "name", required=True, help="Name to store the anatomy under.")
@click.option("--bmi", type=FiniteFloat(), help="Body-mass index, kg/m^2 (16-60); default 25.")
@click.option("--spacing", type=click.Choice(["0.5", "1", "2"]), help="Voxel size in mm; default 1.")
@click.option("--sex", type=click.Choice(["male", "female"]), help="Default male.")
@click.option("--lordosis", type=FiniteFloat(), help="L1-S1 lordosis in degrees; default 50.")
@click.option("--degeneration", type=FiniteFloat(), help="Degeneration grade 0-3; default 0.")
@click.option("--seed", type=SEED, help="Seed of textures and variations; default 0.")
@click.option("--fov", type=click.Choice(["torso", "spine"]), help="Field of view; default torso.")
@click.option("--param", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other spine parameter, e.g. --param scoliosis_cobb_deg=20 (repeatable).")
def generate_command(name: str, bmi, spacing, sex, lordosis, degeneration, seed, fov, extra) -> None:
    """Generate the parametric lumbar spine patient and store it as anatomy NAME."""
    from anatomy_models.spine import SpineParameters, generate_spine
    from anatomy_models.store import check_anatomy_name

    check_anatomy_name(name)
    values = dict(_parse_parameter(text) for text in extra)
    options = {"bmi": bmi, "spacing_mm": float(spacing) if spacing else None, "sex": sex, "lordosis_deg": lordosis,
               "degeneration": degeneration, "seed": seed, "field_of_view": fov}
    values.update({key: value for key, value in options.items() if value is not None})
    params = SpineParameters.from_mapping(values)
    with progress_bar(f"generating {name}") as report:
        generated = generate_spine(params, progress=report)
    path = save_anatomy(generated, name)
    shape = " x ".join(str(n) for n in generated.ct.shape)
    out.print(f"Stored anatomy [bold]{user_text(name)}[/] in {user_text(path)} ({shape} voxels of "
              f"{params.spacing_mm:g} mm, "
              f"{len(generated.label_table)} structures, {len(generated.landmarks)} landmarks)")


@anatomy.command("measure")
@click.argument("name")
def measure_command(name: str) -> None:
    """Measure generated spine NAME's labels against the reference anatomy tables (clinical.md §4)."""
    from anatomy_models.spine.measure import measure_spine

    measured = load_anatomy(name)
    with progress_bar(f"measuring {name}"):
        rows = measure_spine(measured)
    table = Table("measurement", "level", "measured", "reference", "difference", "source")
    for row in rows:
        difference = f"{100 * row.error_fraction:+.1f}%"
        style = "red" if abs(row.error_fraction) > 0.10 else None
        table.add_row(row.name, row.level, f"{row.value:.1f} {row.unit}", f"{row.reference:.1f} {row.unit}",
                      difference, row.source, style=style)
    out.print(table)
    within = sum(abs(row.error_fraction) <= 0.10 for row in rows)
    out.print(f"{within} of {len(rows)} measurements within 10% of the reference.")
