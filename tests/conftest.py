"""Shared test set-up: every test session gets its own spinesim home, so no test sees a user's cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

ROOT = Path(__file__).resolve().parents[1]
_WARMUP = pytest.StashKey[subprocess.Popen]()


@pytest.fixture(scope="session", autouse=True)
def spinesim_home(tmp_path_factory: pytest.TempPathFactory):
    """A private SPINESIM_HOME for the whole session (shared caches, e.g. generated anatomies).

    The parallel workers of one run (pytest-xdist) share its generated patients and X-ray spectra: each
    worker's home links to one folder beside the workers' own, and the store generates a patient once while
    another process waits for it (a worker would otherwise generate the built-in patient again, 10-40 s
    each); a spectrum is written whole in one rename (SpekPy takes 2-5 s each)."""
    home = tmp_path_factory.mktemp("spinesim-home")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _link_shared_caches(home, tmp_path_factory.getbasetemp().parent)
    previous = os.environ.get("SPINESIM_HOME")
    os.environ["SPINESIM_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("SPINESIM_HOME", None)
    else:
        os.environ["SPINESIM_HOME"] = previous


def _link_shared_caches(home: Path, run_folder: Path) -> None:
    """Link ``home``'s generated patients and spectra to the folders of the run (``run_folder``) that all
    its processes share."""
    for cache, shared_name in (("generated", "generated-patients"), ("spectra", "spectra")):
        shared = run_folder / shared_name
        shared.mkdir(exist_ok=True)
        (home / cache).symlink_to(shared, target_is_directory=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """On the controller of a parallel run, compile the ultrasound kernels in a child while the workers
    start (tests/kernel_warmup.py says why); the run does not wait for it."""
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", default=None):
        return
    run_folder = config._tmp_path_factory.getbasetemp()
    home = run_folder / "kernel-warmup-home"
    home.mkdir()
    _link_shared_caches(home, run_folder)
    environment = dict(os.environ, SPINESIM_HOME=str(home), PYTHONPATH=str(ROOT))
    with open(run_folder / "kernel-warmup.log", "wb") as log:  # the child's output, if it fails
        config.stash[_WARMUP] = subprocess.Popen([sys.executable, "-m", "tests.kernel_warmup"], cwd=ROOT,
                                                 env=environment, stdout=log, stderr=subprocess.STDOUT)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the warm-up child if it is still compiling (a run shorter than the compile)."""
    warmup = session.config.stash.get(_WARMUP, None)
    if warmup is not None and warmup.poll() is None:
        warmup.kill()
        warmup.wait()


@pytest.fixture(scope="session")
def small_spine(spinesim_home):
    """The built-in patient at 2 mm (default parameters otherwise), generated once per session and
    cached on disk under the session's SPINESIM_HOME. Use it for most tests that need an anatomy."""
    from anatomy_models.spine import SpineParameters
    from anatomy_models.store import generated_anatomy

    return generated_anatomy(SpineParameters(spacing_mm=2.0))


@pytest.fixture(scope="session")
def model_2mm():
    """The built-in patient's implicit model on small_spine's 2 mm grid (its skeleton, shapes and trunk; no
    voxels), built once per session: 3 s of CPU each time a file built its own (15-30 s on a busy machine).
    Shared: a test reads it and never changes it."""
    from anatomy_models.spine import SpineParameters
    from anatomy_models.spine.generator import build_model

    return build_model(SpineParameters(spacing_mm=2.0))


@pytest.fixture(scope="session")
def model_1mm():
    """The built-in patient's implicit model on spine_1mm's 1 mm grid, built once per session; as model_2mm."""
    from anatomy_models.spine import SpineParameters
    from anatomy_models.spine.generator import build_model

    return build_model(SpineParameters())


@pytest.fixture(scope="session")
def spine_1mm(spinesim_home):
    """The built-in patient exactly as ``load_anatomy("default")`` gives it (1 mm grid). Slower to make
    (several seconds): only for tests that need the detail."""
    from anatomy_models.spine import SpineParameters
    from anatomy_models.store import generated_anatomy

    return generated_anatomy(SpineParameters())


@pytest.fixture(scope="session")
def anatomy_for(spinesim_home):
    """``anatomy_for(scenario)``: the scenario's anatomy on a 2 mm grid (the scenario's own source with
    only the grid changed), cached by its parameters for the whole session (scoring and report tests)."""
    cache = {}

    def load(scenario):
        key = scenario.anatomy.spine_parameters(spacing_mm=2.0).cache_key()
        if key not in cache:
            cache[key] = scenario.anatomy.load(spacing_mm=2.0)
        return cache[key]

    return load
