"""The needle's hub: what it shows (blood when the tip is in a vessel, but not every time) and what it is made
of, as the X-ray beam sees it.

A blood flash at the hub detects intravascular needle placement in only 44.7% of lumbar
transforaminal injections (Furman et al., Spine 2000; clinical.md §5.4), which is why contrast under
live fluoroscopy or DSA is required before the injectate. So when the tip enters a vessel, blood
shows at the hub with probability :data:`FLASH_SENSITIVITY`, drawn from a generator seeded by (scenario
seed, action index): a replay shows the same flash, and no draw depends on the ones before it. CSF
from the dural sac always shows (clear fluid drips from an open hub) [ED].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from anatomy_models.tissues import linear_attenuation_per_mm, tissue

if TYPE_CHECKING:
    from simulator.needle.shaft import Needle

# Furman et al. 2000: sensitivity of the blood flash for intravascular placement (clinical.md §5.4).
FLASH_SENSITIVITY = 0.447
# Keeps the flash's draws apart from the loss-of-resistance syringe's, which use the same seeds.
_STREAM = 0x0F1A5


def blood_shows(seed: int, action_index: int) -> bool:
    """Whether blood shows at the hub when the tip enters a vessel at action ``action_index`` (0-based).

    Examples
    --------
    >>> blood_shows(7, 3) == blood_shows(7, 3)
    True
    >>> bool(0.40 < np.mean([blood_shows(seed, 5) for seed in range(4000)]) < 0.50)
    True
    """
    draw = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(action_index), _STREAM]).random()
    return bool(draw < FLASH_SENSITIVITY)


# What the hub is made of, as fluoroscopy shows it. A spinal needle's hub is a moulded plastic Luer hub (here PMMA)
# with its female Luer bore (HUB_INNER_FRACTION of its outer diameter: a Luer taper is ~4.3 mm inside a ~6-7 mm hub),
# the steel cannula bonded into it along its length, and the stylet's cap seated in the bore at its outer end: a
# steel knob STYLET_CAP_LENGTH_MM long filling the bore. A plastic ring alone read as "a thin ring for a hub" (issue 16:
# a 22 G Quincke's hub is a dense metal-and-plastic cylinder with a metal stylet cap; end-on a dense round blob in a
# ring, side-on a short dense cylinder) [ED: dimensions; the cap's metal as the reader describes it].
HUB_INNER_FRACTION = 0.65
STYLET_CAP_LENGTH_MM = 3.0


def hub_cylinders(needle: Needle, kev: float) -> list[list[float]]:
    """The hub as attenuating cylinders beyond the shaft's outer end: rows (start xyz, unit axis xyz, length mm,
    radius mm, mu 1/mm at ``kev``). Overlapping cylinders add, so the bore enters with negative mu: the plastic
    tube, the cannula's steel through it up to the stylet cap's steel plug in the bore at the hub's outer end.
    """
    spec = needle.spec
    steel = tissue("steel").xray_mu_per_mm(kev)
    plastic = linear_attenuation_per_mm("pmma", kev)
    outward = -needle.direction
    start = needle.hub
    bore_radius = HUB_INNER_FRACTION * spec.hub_diameter_mm / 2.0
    cap_length = min(STYLET_CAP_LENGTH_MM, spec.hub_length_mm)
    cap_start = start + (spec.hub_length_mm - cap_length) * outward
    return [
        [*start, *outward, spec.hub_length_mm, spec.hub_diameter_mm / 2.0, plastic],
        [*start, *outward, spec.hub_length_mm, bore_radius, -plastic],
        [*start, *outward, spec.hub_length_mm - cap_length, spec.outer_diameter_mm / 2.0, steel],
        [*cap_start, *outward, cap_length, bore_radius, steel],
    ]
