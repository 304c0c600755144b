"""``spinesim anatomy``: list, inspect, import and export anatomies."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anatomy_models.sources import describe_source, import_anatomy
from anatomy_models.store import anatomy_directory, load_anatomy, save_anatomy, stored_anatomy_names, stored_anatomy_summary
from simulator.cli import progress_bar

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
        table.add_row(summary["name"], summary["source"], str(summary["structures"]), str(summary["landmarks"]))
    out.print(table)


@anatomy.command("info")
@click.argument("source")
def info_command(source: str) -> None:
    """Describe SOURCE: a stored anatomy's name, an anatomy folder, or an image file or folder."""
    path = Path(source)
    if not path.exists() and source in stored_anatomy_names():
        path = anatomy_directory(source)
    table = Table(show_header=False)
    for key, value in describe_source(path).items():
        table.add_row(key, value)
    out.print(table)


@anatomy.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "name", required=True, help="Name to store the anatomy under.")
def import_command(source: Path, name: str) -> None:
    """Import SOURCE (an image file or folder) and store it as anatomy NAME."""
    with progress_bar(f"importing {source.name}") as report:
        imported = import_anatomy(source, progress=report)
    path = save_anatomy(imported, name)
    out.print(f"Stored anatomy [bold]{name}[/] in {path}")


@anatomy.command("export")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["nrrd"]), default="nrrd", show_default=True,
              help="File format of the exported CT.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output file or folder.")
def export_command(name: str, fmt: str, output: Path) -> None:
    """Export stored anatomy NAME's CT to OUTPUT."""
    from anatomy_models.nrrd import write_nrrd

    loaded = load_anatomy(name)
    write_nrrd(loaded.ct, output, compression_level=6)
    out.print(f"Wrote {output}")


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
@click.option("--bmi", type=float, help="Body-mass index, kg/m^2 (16-60); default 25.")
@click.option("--spacing", type=click.Choice(["0.5", "1", "2"]), help="Voxel size in mm; default 1.")
@click.option("--sex", type=click.Choice(["male", "female"]), help="Default male.")
@click.option("--lordosis", type=float, help="L1-S1 lordosis in degrees; default 50.")
@click.option("--degeneration", type=float, help="Degeneration grade 0-3; default 0.")
@click.option("--seed", type=int, help="Seed of textures and variations; default 0.")
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
    out.print(f"Stored anatomy [bold]{name}[/] in {path} ({shape} voxels of {params.spacing_mm:g} mm, "
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
