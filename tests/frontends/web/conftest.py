"""The web tests' patient: the 2 mm built-in spine, stored as ``web-spine`` for ``serve --anatomy``."""

from __future__ import annotations

import pytest

from anatomy_models.store import save_anatomy

ANATOMY = "web-spine"


@pytest.fixture(scope="session")
def patient(small_spine):
    save_anatomy(small_spine, ANATOMY)
    return small_spine
