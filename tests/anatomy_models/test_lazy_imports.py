"""Light front ends stay light: importing the error type (or the package) loads no numerics; the
package's names still resolve, on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("numpy", "scipy", "pyvista", "vtkmodules", "numba", "skimage", "trimesh")


def modules_after(code: str) -> dict:
    """``sys.modules`` facts after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_error_type_and_the_package_import_no_numerics():
    loaded = modules_after("import anatomy_models\nfrom anatomy_models.errors import SpinesimError\n"
                           "from anatomy_models import SpinesimError as Same\nassert Same is SpinesimError")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_package_names_resolve_on_first_use():
    import anatomy_models
    from anatomy_models.volume import Volume

    assert anatomy_models.Volume is Volume and "Anatomy" in dir(anatomy_models)
    loaded = modules_after("import anatomy_models\nanatomy_models.Volume")
    assert "numpy" in loaded and "pyvista" not in loaded  # a Volume needs numpy, not vtk


def test_the_web_portal_and_serve_command_import_no_numerics():
    loaded = modules_after("import frontends.web.portal, frontends.commands.serve, scenarios.library\n"
                           "from anatomy_models.store import anatomy_folder")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_an_anatomy_loads_without_vtk_until_a_surface_is_asked_for():
    loaded = modules_after("from scenarios.schema import library_scenarios\nlibrary_scenarios()\n"
                           "import frontends.web.attempt")
    assert "pyvista" not in loaded and "trimesh" not in loaded and "pydicom" not in loaded
