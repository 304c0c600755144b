"""Built-in scenarios (YAML, package data); see :mod:`scenarios.schema`.

:func:`library_ids` reads only the ``id`` of each file (no validation, no numerics), for front ends
that must check a scenario name before anything heavy is loaded (``spinesim serve``).
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

import yaml


def library_files() -> list[Traversable]:
    """The built-in scenario files, by file name."""
    return sorted((entry for entry in resources.files("scenarios.library").iterdir()
                   if entry.name.endswith((".yaml", ".yml"))), key=lambda entry: entry.name)


def library_ids() -> list[str]:
    """The ids the built-in scenarios declare, sorted.

    Examples
    --------
    >>> "ilesi-default" in library_ids()
    True
    """
    return sorted(str(yaml.safe_load(entry.read_text(encoding="utf-8"))["id"]) for entry in library_files())
