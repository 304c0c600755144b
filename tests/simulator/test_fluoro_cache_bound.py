"""Issue 23: the anatomy's detected frames (one per pose, beam and projection cell) are kept on one shelf of
bounded size, whatever the exposure control's kVp and the cell; a shelf per kVp and cell held up to 33 of them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from anatomy_models.derived import Derived
from simulator.imaging import fluoro


def test_detected_frames_of_every_beam_and_cell_share_one_bounded_shelf(monkeypatch):
    keep = 3
    monkeypatch.setattr(fluoro, "_FACTS_PER_ANATOMY", keep)
    # Stand-ins for the projection and the spectrum's integration: only the cache's bookkeeping is under test.
    monkeypatch.setattr(fluoro, "restored_on_cells", lambda anatomy, carm, method, cell: (np.zeros(4), np.zeros(4)))
    monkeypatch.setattr(fluoro, "detected_water_bone", lambda spectrum, water, bone: water + spectrum.kvp)
    anatomy = SimpleNamespace(derived=Derived())
    carm = SimpleNamespace(detector_pixels=4, projection_matrix=np.eye(3, 4))
    for kvp in (70.0, 75.0, 80.0, 85.0, 90.0):
        for cell in (1, 2):
            frame = fluoro.detected_frame(anatomy, carm, SimpleNamespace(kvp=kvp, filtration_mm_al=3.0), "joseph", cell)
            assert frame[0] == kvp  # the frame of this beam, not another's
    assert len(anatomy.derived) == keep
