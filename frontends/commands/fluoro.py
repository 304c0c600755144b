"""``spinesim fluoro``: take one fluoroscopy shot of an anatomy and save it as a PNG."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy
from frontends.cli import SEED, FiniteFloat, OutputPath, user_text
from simulator.imaging.carm import (CArm, ap, contralateral_oblique, ipsilateral_oblique, lateral, scotty_dog,
                                    square_endplate)
from simulator.imaging.dose import AEC_TARGET_DETECTOR_NGY_PER_FRAME, DoseLedger, Technique, shot_technique
from simulator.imaging.drr import METHODS
from simulator.imaging.fluoro import DEFAULT_POLARITY, POLARITIES, Display, render_fluoro

out = Console()

VIEWS = ("ap", "lateral", "oblique", "clo", "scotty")


def carm_for_view(anatomy, view: str, level: str, side: str, angle: float | None, tilt: float | None,
                  pixels: int) -> CArm:
    """The C-arm pose of a named view, centred on ``level``; AP and obliques square its endplate.

    ``tilt`` (degrees, cranial +) replaces the squaring tilt; ``angle`` (degrees) the oblique angle.
    """
    fields = {"detector_pixels": pixels}
    squarable = f"{level}.superior_endplate.normal" in anatomy.directions
    if view == "lateral":
        carm = lateral(anatomy, level, side, **fields)
    elif view == "scotty":
        carm = scotty_dog(anatomy, level, side, angle_deg=angle, **fields)
    else:
        if view == "ap":
            carm = ap(anatomy, level, **fields)
        elif view == "oblique":
            carm = ipsilateral_oblique(anatomy, level, side, 25.0 if angle is None else angle, **fields)
        else:
            carm = contralateral_oblique(anatomy, level, side, 45.0 if angle is None else angle, **fields)
        if squarable and tilt is None:
            carm = square_endplate(anatomy, level, primary_deg=carm.primary_deg, isocenter=carm.isocenter, **fields)
    return carm if tilt is None else carm.with_(secondary_deg=tilt)


@click.command()
@click.argument("anatomy", default="default")
@click.option("--view", type=click.Choice(VIEWS), default="ap", show_default=True,
              help="ap (squared), lateral, oblique (ipsilateral), clo (contralateral oblique), scotty (Scotty dog).")
@click.option("--side", type=click.Choice(["left", "right"]), default="left", show_default=True,
              help="The needle's side (the patient's), for obliques; the detector's side for a lateral.")
@click.option("--level", default="L4", show_default=True, help="Vertebra to centre on (and square).")
@click.option("--angle", type=FiniteFloat(-90, 90), default=None,
              help="Oblique angle, degrees [25 oblique, 45 CLO, derived for scotty].")
@click.option("--tilt", type=FiniteFloat(-90, 90, min_open=True, max_open=True), default=None,
              help="Cranial (+) / caudal (-) tilt, degrees [squares the endplate].")
@click.option("--kvp", type=FiniteFloat(), default=None,
              help="Tube voltage, kV [the exposure control's kV-mA curve chooses it, as on a shot in a session].")
@click.option("--dose", "dose_ngy", type=FiniteFloat(), default=AEC_TARGET_DETECTOR_NGY_PER_FRAME, show_default=True,
              help="Detector air kerma per frame the exposure control aims for, nGy (noise level; a shot is a "
                   "tap of a few frames, averaged).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the quantum noise.")
@click.option("--pixels", type=click.IntRange(8, 4096), default=512, show_default=True, help="Image size, pixels.")
@click.option("--method", type=click.Choice(METHODS), default="joseph", show_default=True, help="DRR projector.")
@click.option("--polarity", type=click.Choice(POLARITIES), default=DEFAULT_POLARITY, show_default=True,
              help="Display: bone_black (bone, needle and contrast dark, the C-arm default) or bone_white "
                   "(inverted, radiograph-like).")
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
def fluoro(anatomy: str, view: str, side: str, level: str, angle: float | None, tilt: float | None, kvp: float | None,
           dose_ngy: float, seed: int, pixels: int, method: str, polarity: str, output: Path) -> None:
    """Take a fluoroscopy shot of ANATOMY (a stored anatomy's name or folder) and save it as a PNG."""
    if output.suffix.lower() != ".png":
        raise SpinesimError("the output must be a .png file", path=output)
    loaded = load_anatomy(anatomy)
    carm = carm_for_view(loaded, view, level, side, angle, tilt, pixels)
    # The shot a session takes at this pose: the exposure control's kVp and tube charge within its limits
    # (simulator.imaging.dose.shot_technique), so a thick view is as noisy here as in a session.
    asked = Technique(kvp=80.0 if kvp is None else kvp, aec_target_ngy=dose_ngy, automatic_kvp=kvp is None)
    technique = shot_technique(loaded, carm, "pulse", asked)
    image = render_fluoro(loaded, carm, dose=technique, seed=seed, display=Display(polarity=polarity), method=method)
    image.save_png(output)
    exposure = image.exposure
    shot = DoseLedger().add_shot(exposure)
    out.print(f"{view} {user_text(carm.label)} at {user_text(level)}: wrote {user_text(output)} ({pixels}x{pixels}); "
              f"a tap of {shot.frames} frames at "
              f"{exposure.kvp:.0f} kVp {exposure.mas:.3f} mAs: {shot.reference_air_kerma_mgy:.3f} mGy at the "
              f"reference point, DAP {shot.dose_area_product_gy_cm2 * 1000:.2f} mGy·cm²")
