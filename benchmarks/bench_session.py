"""Session engine on the built-in spine (1 mm): needle trace, an advance, a contrast injection.

Baselines run in the same process on the same data:

- the trace against plain numpy nearest-neighbour sampling of the label map along the same shaft at
  the same step (no boundary refinement): the least any trace must do;
- one ``advance`` (validation, trace, bone stop, events, paraesthesia distances, target zone) against
  the same numpy sampling;
- a 3 mL epidural injection against one Euclidean distance transform (scipy) of its crop, the
  cheapest whole-crop distance computation;
- the concentration volume at a new time against the injection itself.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from anatomy_models.store import load_anatomy
from benchmarks.measure import Measurement, best_time
from scenarios.schema import load_scenario
from simulator.case.planner import plan_trajectory
from simulator.needle.contrast import MODELS, inject
from simulator.needle.trace import tracer_for
from simulator.session.fold import Session


def run() -> list[Measurement]:
    anatomy = load_anatomy("default")
    tracer = tracer_for(anatomy)
    session = Session(load_scenario("ilesi-default"), anatomy)
    path = plan_trajectory(session.tracer, session.target, session.spec)
    entry, direction, length = path.entry, path.direction, 100.0

    steps = np.arange(0.0, length, tracer.step_mm)
    to_voxel = np.linalg.inv(tracer.volume.affine)

    def numpy_sampling():
        ijk = np.rint((entry + steps[:, None] * direction) @ to_voxel[:3, :3].T + to_voxel[:3, 3]).astype(int)
        ok = np.all((ijk >= 0) & (ijk < tracer.codes.shape), axis=1)
        codes = tracer.codes[tuple(ijk[ok].T)]
        return np.flatnonzero(np.diff(codes))

    baseline = best_time(numpy_sampling, repeats=20)
    trace_time = best_time(lambda: tracer.trace(entry, direction, length), repeats=20)

    session.apply({"type": "place_needle", "t": 1.0, "entry": entry.tolist(), "direction": direction.tolist()})
    clock = iter(np.arange(2.0, 1000.0, 0.5))

    def advance_and_back():
        session.apply({"type": "advance", "t": float(next(clock)), "mm": 1.0})
        session.apply({"type": "withdraw", "t": float(next(clock)), "mm": 1.0})

    session.apply({"type": "advance", "t": 1.5, "mm": 0.5 * path.depth_mm})
    advance_time = best_time(advance_and_back, repeats=20) / 2.0

    tip = path.tip
    grid = tracer.volume.crop(tip - MODELS["epidural"].half_extent_mm, tip + MODELS["epidural"].half_extent_mm)
    edt_time = best_time(lambda: ndimage.distance_transform_edt(grid.array != 0, sampling=grid.spacing))
    spread = inject(tracer, tip, 3.0)
    inject_time = best_time(lambda: inject(tracer, tip, 3.0))
    update_time = best_time(lambda: spread.concentration(17.0), repeats=10)

    return [
        Measurement("trace of a 100 mm shaft", trace_time * 1e3, baseline * 1e3, "ms",
                    "numpy nearest-neighbour sampling, same step", goal_max=2.0),
        Measurement("advance or withdraw 1 mm (a whole session step)", advance_time * 1e3, baseline * 1e3, "ms",
                    "numpy nearest-neighbour sampling, same step", goal_max=50.0),
        Measurement("inject 3 mL epidural (fill order)", inject_time, edt_time, "s",
                    "scipy EDT of the same crop", goal_max=5.0),
        Measurement("contrast volume at a new time", update_time, inject_time, "s",
                    "the injection itself", goal_max=0.05),
    ]
