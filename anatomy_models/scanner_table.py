"""The CT scanner's table, and whatever else lay outside the patient, taken out of an imported CT.

A diagnostic CT is taken supine: the scanner's table (its carbon-fibre top, mattress and pads) lies
under the patient's back, inside the scan's field of view. Fluoroscopy for a spine injection is done
prone, on the fluoroscopy table under the patient's front, which the C-arm model adds
(``simulator/imaging/carm.py``). Left in, the CT's table would cross every ray behind the back: a band
behind the spinous processes on a lateral and extra attenuation on every AP on the wrong side.

:func:`without_scanner_table` keeps the patient's body (the largest region above -400 HU, the
air/fat boundary of ``tissues.tissue_from_hu``, after an opening that cuts thin bridges where the
back rests on the pads) with its gas and lungs (the holes of each axial slice) and every labelled
voxel, and sets everything else to air (-1000 HU): also arms that lie apart from the trunk, which
for a spine injection are up beside the head, out of the beam.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from anatomy_models.volume import Volume

AIR_HU = -1000
# The air/fat boundary (tissues.tissue_from_hu): above it a voxel is tissue or an object.
BODY_HU = -400.0
# Bridges thinner than this (mm) between the body and the table (the back resting on a pad) are cut
# by the opening before the body is picked; the body's own outline comes back afterwards [ED: pads
# are 3-6 cm of foam at -800 to -100 HU, but where the back presses them they touch the skin].
BRIDGE_MM = 6.0
# Objects outside the body are a table and pads only while they are a small part of what the scan
# holds (a table 45 cm x 2 cm beside a 35 x 25 cm abdomen: ~10%); beyond this fraction the scan is not
# of one patient (a phantom of separate objects, two limbs) and is left as it is [ED].
MAX_OBJECT_FRACTION = 0.2


def body_mask(ct: Volume, keep: np.ndarray | None = None) -> np.ndarray:
    """The patient's body in ``ct`` (bool, the CT's shape): the largest region above :data:`BODY_HU`,
    with the holes of each axial slice (bowel gas, lungs) and the voxels of ``keep`` (bool) in it.

    Examples
    --------
    >>> hu = np.full((20, 20, 4), -1000, np.int16)
    >>> hu[3:17, 1:13, :] = 40; hu[8:12, 5:8, :] = -900   # a body with gas in it
    >>> hu[2:18, 15:17, :] = 300                           # a table 6 mm behind it
    >>> mask = body_mask(Volume.from_spacing(hu, (3.0, 3.0, 3.0)))
    >>> int(mask[:, 1:13].sum()), int(mask[:, 15:17].sum())
    (672, 0)
    """
    tissue = ct.array > BODY_HU
    spacing = np.linalg.norm(ct.affine[:3, :3], axis=0)
    radius = [max(0, int(round(BRIDGE_MM / 2.0 / float(s)))) for s in spacing]
    opened = ndimage.binary_opening(tissue, structure=np.ones([2 * r + 1 for r in radius], bool)) if any(radius) \
        else tissue
    regions, count = ndimage.label(opened if opened.any() else tissue)
    if count == 0:
        return tissue if keep is None else tissue | keep
    largest = regions == 1 + int(np.argmax(np.bincount(regions.ravel())[1:]))
    # The body's outline as it was (the opening rounded its edges off): grown back within the tissue.
    body = ndimage.binary_dilation(largest, structure=np.ones([2 * r + 1 for r in radius], bool)) & tissue
    body |= largest
    long_axis = int(np.argmax(np.abs(ct.affine[2, :3]) / spacing))
    for index in range(body.shape[long_axis]):
        axial = [slice(None)] * 3
        axial[long_axis] = index
        body[tuple(axial)] = ndimage.binary_fill_holes(body[tuple(axial)])
    return body if keep is None else body | keep


def without_scanner_table(ct: Volume, labels: Volume | None = None) -> tuple[Volume, int]:
    """``ct`` with everything outside the patient's body (:func:`body_mask`; labelled voxels count as
    body) set to air, and the number of voxels of objects (above :data:`BODY_HU`) taken out (0: ``ct``
    itself is returned; the air around the patient, its noise and foam pads alone are left as they are).
    A scan whose objects outside the largest one exceed :data:`MAX_OBJECT_FRACTION` of its tissue is
    not of one patient on a table (a phantom of separate parts) and is returned as it is.

    Examples
    --------
    >>> hu = np.full((20, 20, 4), -1000, np.int16); hu[3:17, 1:13, :] = 40; hu[2:18, 15:17, :] = 300
    >>> cleaned, changed = without_scanner_table(Volume.from_spacing(hu, (3.0, 3.0, 3.0)))
    >>> changed, int(cleaned.array[:, 15:17].max())
    (128, -1000)
    """
    keep = None if labels is None else labels.array > 0
    outside = (ct.array > AIR_HU) & ~body_mask(ct, keep)
    changed = int(np.count_nonzero(ct.array[outside] > BODY_HU))
    if not changed or changed > MAX_OBJECT_FRACTION * np.count_nonzero(ct.array > BODY_HU):
        return ct, 0
    array = ct.array.copy()
    array[outside] = AIR_HU
    return ct.with_array(array), changed
