"""The child the portal starts as the server starts (:func:`frontends.web.kernels.start_compiling`): it compiles the
ultrasound's numba kernels into numba's cache by rendering one frame the way a workstation does, unless the marker
says the cache already holds them. Apart from :mod:`frontends.web.kernels` because it needs the workstation, whose
handlers need the kernels' lock: one module for both made an import circle."""

from __future__ import annotations

import json
import sys
import time

from frontends.web.kernels import compiled_marker
from frontends.web.portal_link import die_with_parent


def main() -> None:
    """The child: compile unless the marker says the cache holds the kernels of this source; then write it."""
    die_with_parent()
    settings = json.loads(sys.argv[1])
    marker = compiled_marker()
    if marker.exists():
        print("ultrasound kernels already compiled", flush=True)
        return
    # Imported only to compile: a server started on a warm cache pays for numba's and the renderer's imports alone.
    from frontends.casebook import department_catalogue
    from frontends.store import Store
    from frontends.web.patients import Patients
    from frontends.web.workstation import warm_up

    started = time.process_time()
    scenarios = department_catalogue(Store(settings["db_url"]), settings.get("scenario_folders", [])).scenarios
    with_ultrasound = [scenario for _, scenario in sorted(scenarios.items()) if scenario.imaging.ultrasound]
    if not with_ultrasound:
        return
    warm_up(with_ultrasound[0], Patients(settings.get("anatomy")), fluoroscopy=False)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    print(f"ultrasound kernels compiled in {time.process_time() - started:.1f} s of CPU", flush=True)


if __name__ == "__main__":
    main()
