"""What the needle's hub shows: blood when the tip is in a vessel, but not every time.

A blood flash at the hub detects intravascular needle placement in only 44.7% of lumbar
transforaminal injections (Furman et al., Spine 2000; clinical.md §5.4), which is why contrast under
live fluoroscopy or DSA is required before the injectate. So when the tip enters a vessel, blood
shows at the hub with probability :data:`FLASH_SENSITIVITY`, drawn from a generator seeded by (scenario
seed, action index): a replay shows the same flash, and no draw depends on the ones before it. CSF
from the dural sac always shows (clear fluid drips from an open hub) [ED].
"""

from __future__ import annotations

import numpy as np

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
