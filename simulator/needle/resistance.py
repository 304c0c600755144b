"""The loss-of-resistance syringe: what the trainee's thumb feels, from what the tip is in.

Pressing the plunger of a loss-of-resistance (LOR) syringe meets high resistance in ligament (the
ligamentum flavum above all), moderate resistance in muscle, low-to-moderate in fat, and gives way
abruptly when the tip enters the epidural space (clinical.md §2.1 [S12]).

False loss. LOR alone is unreliable: with air-LOR, 25.7% of tips the operator believed epidural were
in the posterior soft tissues (§2.1, §3 [S13]). That is a rate per *placement* (the last check of an
attempt), not per check. We model an operator who presses the syringe :data:`CHECKS_BEFORE_EPIDURAL`
times in posterior soft tissue (interspinous and supraspinous ligament gaps, paraspinal muscle, fat)
before the tip would reach the epidural space [ED], and stops at the first loss felt. If each of
those checks is felt as a loss independently with probability ``p``, an attempt ends on a false
loss with probability ``1 - (1 - p)^n``; setting that to 0.257 gives

    p = 1 - (1 - 0.257)^(1/n) = 0.0943 per check for n = 3.

The ligamentum flavum itself never gives a false loss (it is the high resistance that precedes the
true one). Each check draws from its own generator seeded by (scenario seed, action index), so a
replay feels the same and no check depends on how many came before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from anatomy_models.errors import SpinesimError
from anatomy_models.structures import in_group

Feel = Literal["high", "moderate", "low_moderate", "lost"]

# §2.1 [S13]: share of air-LOR placements that were in the posterior soft tissues.
FALSE_LOSS_PER_PLACEMENT = 0.257
# Syringe checks an operator makes in posterior soft tissue on the way to the epidural space [ED].
CHECKS_BEFORE_EPIDURAL = 3
FALSE_LOSS_PER_CHECK = 1.0 - (1.0 - FALSE_LOSS_PER_PLACEMENT) ** (1.0 / CHECKS_BEFORE_EPIDURAL)

# What the plunger feels by tissue class where no structure overrides it [S12].
FEEL_BY_TISSUE: dict[str, Feel] = {
    "skin": "high", "ligament": "high", "disc_annulus": "high", "dura": "high",
    "cartilage": "moderate", "muscle": "moderate", "soft_tissue": "moderate", "nerve": "moderate",
    "spinal_cord": "moderate", "disc_nucleus": "moderate",
    "fat": "low_moderate",
    "csf": "lost", "blood": "lost",
}
# Structures whose feel differs from their tissue class's.
FEEL_BY_STRUCTURE: dict[str, Feel] = {"epidural_space": "lost"}
# Where a false loss can happen: posterior soft tissue (§3 [S13]), not the ligamentum flavum.
FALSE_LOSS_TISSUES = frozenset({"fat", "muscle", "soft_tissue"})
FALSE_LOSS_STRUCTURES = ("interspinous_ligament", "supraspinous_ligament")


@dataclass(frozen=True)
class ResistanceCheck:
    """The result of one press on the LOR syringe.

    Parameters
    ----------
    feel : {"high", "moderate", "low_moderate", "lost"}
        What the trainee feels.
    false_loss : bool
        True when ``feel`` is "lost" but the tip is not in the epidural space (a false loss the
        scoring can flag; the trainee is not told).
    """

    feel: Feel
    false_loss: bool


def can_false_loss(structure: str, tissue: str) -> bool:
    """Whether a check with the tip in ``structure`` can give a false loss."""
    if structure in FEEL_BY_STRUCTURE:
        return False
    return tissue in FALSE_LOSS_TISSUES or any(in_group(structure, group) for group in FALSE_LOSS_STRUCTURES)


def check_loss_of_resistance(structure: str, tissue: str, seed: int, check_index: int) -> ResistanceCheck:
    """Press the syringe with the tip in ``structure`` (of ``tissue``).

    Parameters
    ----------
    structure, tissue : str
        What the tip is in (see :mod:`simulator.needle.trace`).
    seed : int
        The scenario's seed.
    check_index : int
        Which action of the attempt this is; with ``seed`` it seeds this check's draw.

    Examples
    --------
    >>> check_loss_of_resistance("ligamentum_flavum.L4-L5", "ligament", seed=1, check_index=3)
    ResistanceCheck(feel='high', false_loss=False)
    >>> check_loss_of_resistance("epidural_space", "fat", seed=1, check_index=4).feel
    'lost'
    """
    if tissue == "air":
        raise SpinesimError("the needle is not in the patient; there is nothing to feel", hint="place the needle first")
    feel: Feel = FEEL_BY_STRUCTURE.get(structure) or FEEL_BY_TISSUE.get(tissue, "moderate")
    if feel != "lost" and can_false_loss(structure, tissue):
        draw = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(check_index)]).random()
        if draw < FALSE_LOSS_PER_CHECK:
            return ResistanceCheck("lost", True)
    return ResistanceCheck(feel, False)
