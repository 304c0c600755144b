"""The simulator engine: a virtual patient imaged and needled, one action at a time.

Sub-packages, by concept:

- :mod:`simulator.imaging`: the C-arm and the DRR, the fluoroscopy chain and its dose, the ultrasound
  probe and B-mode image;
- :mod:`simulator.needle`: the needle in the patient, its trace through the tissues, loss of
  resistance and contrast spread;
- :mod:`simulator.case`: a scenario's target and the expert's path to it, and the controls that turn
  what the trainee does on an image into needle and probe poses;
- :mod:`simulator.session`: actions, the session (the fold of an action log), the one replay, the
  history an attempt leaves, and the frames of a state.

The verbs a user calls are exported here and imported on first use (PEP 562), so importing a light
submodule does not load numba and the renderers::

    from simulator import CArm, Session, render_fluoro, replay
"""

from anatomy_models.lazy import lazy_exports

_EXPORTS = {
    "CArm": "simulator.imaging.carm",
    "Needle": "simulator.needle.shaft",
    "Probe": "simulator.imaging.probe",
    "Session": "simulator.session.fold",
    "render_fluoro": "simulator.imaging.fluoro",
    "render_ultrasound": "simulator.imaging.ultrasound",
    "replay": "simulator.session.replay",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("simulator", _EXPORTS, globals())
