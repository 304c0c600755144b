"""Shared test set-up: every test session gets its own spinesim home, so no test sees a user's cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


@pytest.fixture(scope="session", autouse=True)
def spinesim_home(tmp_path_factory: pytest.TempPathFactory):
    """A private SPINESIM_HOME for the whole session (shared caches, e.g. generated anatomies)."""
    home = tmp_path_factory.mktemp("spinesim-home")
    previous = os.environ.get("SPINESIM_HOME")
    os.environ["SPINESIM_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("SPINESIM_HOME", None)
    else:
        os.environ["SPINESIM_HOME"] = previous
