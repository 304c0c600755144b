"""Where spinesim keeps what it makes, and how an anatomy folder is recognised: no numerics here, so
front ends (the web portal, the CLI's error log) can find the home without loading numpy."""

from __future__ import annotations

import os
from pathlib import Path

# The file that makes a folder an anatomy (the on-disk form of anatomy_models.anatomy.Anatomy).
MANIFEST = "anatomy.json"


def spinesim_home() -> Path:
    """The folder for spinesim's caches and stored anatomies (created on demand):
    ``$SPINESIM_HOME`` if set, else ``~/.cache/spinesim``."""
    home = Path(os.environ.get("SPINESIM_HOME") or Path.home() / ".cache" / "spinesim")
    home.mkdir(parents=True, exist_ok=True)
    return home
