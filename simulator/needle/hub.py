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


# What the hub is made of, as fluoroscopy shows it. A spinal needle's hub is a moulded clear plastic Luer hub (here
# PMMA; "note clear hub", e-learning for anaesthesia's spinal needle components, https://e-safe-anaesthesia.org/
# sessions/09_02/d/ELFH_Session/682/tab_822.html) with its female Luer bore (HUB_INNER_FRACTION of its outer
# diameter: a Luer taper is ~4.3 mm across inside a ~6-7 mm hub, ISO 80369-7), the steel cannula bonded into it along
# its length with the stylet's wire inside, and the stylet's colour-coded plastic cap seated in the bore at its outer
# end, STYLET_CAP_LENGTH_MM long. End-on (down the beam) the shaft is a black dot in a grey ring, the hub's wall along
# its length, round a paler bore; side-on a faint plastic cylinder with the steel line through it. A steel cap
# filling the bore showed as a black ball over the dot (issue 16's blind read: "the hub is a ring/cylinder of
# plastic and metal, not a black ball") [ED: dimensions].
HUB_INNER_FRACTION = 0.65
STYLET_CAP_LENGTH_MM = 3.0
# The stylet's handle: the cap's grip outside the hub, as wide as the hub, STYLET_HANDLE_OF_HUB of its length, with the
# stylet's wire (STYLET_WIRE_DIAMETER_MM, a solid steel wire that must pass a 22 G cannula's bore, >= 0.39 mm by
# ISO 9626 regular wall) bent over inside it. Without it the plastic that shows beyond the cannula's end was the
# hub's 15 mm alone, read side-on as "a washer-sized hub" at the end of "a floating bar" (stop 24's blind read of
# the TFESI AP); a spinal needle's hub and its stylet's handle together are 25 mm long, 15 + 10 [ED: no
# manufacturer's data sheet with the hub's or the handle's size was found; the search reached gauge and length only].
STYLET_HANDLE_OF_HUB = 2.0 / 3.0
STYLET_WIRE_DIAMETER_MM = 0.36


def hub_cylinders(needle: Needle, kev: float) -> list[list[float]]:
    """The hub as attenuating cylinders beyond the shaft's outer end: rows (start xyz, unit axis xyz, length mm,
    radius mm, mu 1/mm at ``kev``). Overlapping cylinders add, so the bore enters with negative mu: the plastic
    tube, its bore, the stylet cap's plastic plug in the bore at the hub's outer end, the cannula's steel through it,
    then the stylet's handle beyond the hub with the stylet's wire in it.
    """
    spec = needle.spec
    steel = tissue("steel").xray_mu_per_mm(kev)
    plastic = linear_attenuation_per_mm("pmma", kev)
    outward = -needle.direction
    start = needle.hub
    bore_radius = HUB_INNER_FRACTION * spec.hub_diameter_mm / 2.0
    cap_length = min(STYLET_CAP_LENGTH_MM, spec.hub_length_mm)
    cap_start = start + (spec.hub_length_mm - cap_length) * outward
    handle_start = start + spec.hub_length_mm * outward
    handle_length = STYLET_HANDLE_OF_HUB * spec.hub_length_mm
    wire_radius = min(STYLET_WIRE_DIAMETER_MM, spec.outer_diameter_mm) / 2.0
    return [
        [*start, *outward, spec.hub_length_mm, spec.hub_diameter_mm / 2.0, plastic],
        [*start, *outward, spec.hub_length_mm, bore_radius, -plastic],
        [*cap_start, *outward, cap_length, bore_radius, plastic],
        [*start, *outward, spec.hub_length_mm, spec.outer_diameter_mm / 2.0, steel],
        [*handle_start, *outward, handle_length, spec.hub_diameter_mm / 2.0, plastic],
        [*handle_start, *outward, handle_length, wire_radius, steel],
    ]
