"""Compile the ultrasound kernels into numba's cache once, before the workers of a parallel test run
need them (started by tests/conftest.py in a child of the run's controller).

On a clean clone numba's cache (``cache=True``, beside the sources) is empty, and the first ultrasound
frame costs 53 s of CPU to compile, 0.8 s once cached (time.process_time of one frame of the 2 mm
built-in patient, in a fresh process). Every process that asks before the cache is written compiles its own: both workers, and
in the browser tests each server's workstation and its warm spare. Compiled here while the workers
collect, those that need it later load it; a worker that renders ultrasound before this child is done
(a run of the ultrasound files alone) still compiles its own. The child also makes the session's 2 mm built-in patient (``small_spine``),
which the suite makes anyway, in the store the workers share."""

from __future__ import annotations

from anatomy_models.spine import SpineParameters
from anatomy_models.store import generated_anatomy
from simulator.imaging.probe import standard_view
from simulator.imaging.ultrasound import render_ultrasound


def main() -> None:
    anatomy = generated_anatomy(SpineParameters(spacing_mm=2.0))
    render_ultrasound(anatomy, standard_view(anatomy, "paramedian-sagittal-oblique"))


if __name__ == "__main__":
    main()
