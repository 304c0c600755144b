"""``spinesim ultrasound``: render a B-mode image of an anatomy in a standard lumbar view."""

from __future__ import annotations

from pathlib import Path

import click

from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from frontends.cli import SEED, FiniteFloat, OutputPath
from simulator.imaging.probe import VIEWS
from simulator.session.scans import annotate


@click.command()
@click.argument("anatomy_name", metavar="[ANATOMY]", default="default")
@click.option("--view", type=click.Choice(VIEWS), default="paramedian-sagittal-oblique", show_default=True,
              help="Standard view (lumbar, sacroiliac joint, sacral hiatus).")
@click.option("--level", default="L4-L5", show_default=True, help="Interspace, e.g. L3-L4.")
@click.option("--side", type=click.Choice(["left", "right"]), default="left", show_default=True,
              help="Patient side of the paramedian and sacroiliac views.")
@click.option("--probe", "kind", type=click.Choice(["curvilinear", "linear"]),
              help="Probe kind (default: the view's: curvilinear, linear for the sacral hiatus).")
@click.option("--depth", "depth_mm", type=FiniteFloat(), help="Imaging depth, mm (preset if omitted).")
@click.option("--frequency", "frequency_mhz", type=FiniteFloat(), help="Centre frequency, MHz (preset if omitted).")
@click.option("--gain", "gain_db", type=FiniteFloat(), default=0.0, show_default=True, help="Overall gain, dB.")
@click.option("--dynamic-range", "dynamic_range_db", type=FiniteFloat(), default=55.0, show_default=True, help="dB.")
@click.option("--size", default="512x512", show_default=True, help="Display frame ROWSxCOLUMNS in pixels; the image is cut to the field of view's shape.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Speckle seed.")
@click.option("--doppler", is_flag=True, help="Colour Doppler over the whole frame (flow from the anatomy's vessels).")
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
def ultrasound(anatomy_name: str, view: str, level: str, side: str, kind: str | None, depth_mm: float | None,
               frequency_mhz: float | None, gain_db: float, dynamic_range_db: float, size: str, seed: int,
               doppler: bool, output: Path) -> None:
    """Render a B-mode image of ANATOMY (a stored anatomy's name or folder; "default" if omitted)."""
    from PIL import Image

    from anatomy_models.store import load_anatomy
    from simulator.imaging.probe import standard_view
    from simulator.imaging.ultrasound import render_ultrasound

    try:
        rows, cols = (int(n) for n in size.lower().split("x"))
    except ValueError:
        raise SpinesimError(f"--size must look like 512x512 (rows x columns), got {size!r}") from None
    settings = {"gain_db": gain_db, "dynamic_range_db": dynamic_range_db, "image_shape": (rows, cols)}
    if depth_mm is not None:
        settings["depth_mm"] = depth_mm
    if frequency_mhz is not None:
        settings["frequency_mhz"] = frequency_mhz
    anatomy = load_anatomy(anatomy_name)
    probe = standard_view(anatomy, view, level, side, kind, **settings)
    image = render_ultrasound(anatomy, probe, seed=seed)
    picture = annotate(image)
    if doppler:
        from simulator.imaging.doppler import DopplerBox, colour_doppler

        flow = colour_doppler(anatomy, image, DopplerBox(0, image.pixels.shape[0], 0, image.pixels.shape[1]))
        coloured = (flow[..., 0] != flow[..., 1]) | (flow[..., 2] != flow[..., 1])
        picture[coloured] = flow[coloured]
    with atomic_path(output) as temporary:
        Image.fromarray(picture).save(temporary, format="PNG")
    click.echo(f"Wrote {output} ({view}, {level}, {probe.kind} {probe.frequency_mhz:g} MHz, "
               f"depth {probe.depth_mm:g} mm)")
