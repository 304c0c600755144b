"""YAML read for people: the parsed data together with its node tree, so that a later validation error
can name the line it comes from, and syntax errors that name line and column.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from anatomy_models.errors import SpinesimError


def parse_yaml(text: str, *, path: str | PathLike[str] | None = None, kind: str = "YAML") -> tuple[yaml.Node | None, Any]:
    """``(node tree, data)`` of YAML ``text``; a syntax error names the line and column.

    Examples
    --------
    >>> node, data = parse_yaml("a: 1\\nb: [2, 3]\\n")
    >>> data, node.value[1][1].start_mark.line + 1
    ({'a': 1, 'b': [2, 3]}, 2)
    >>> parse_yaml("a: [1", path="x.yaml")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: x.yaml: line 1, column 6: not valid YAML (expected ',' or ']', but got '<stream end>')
    """
    try:
        return yaml.compose(text), yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpinesimError(f"not valid {kind} ({problem})", path=path, where=where) from None


def read_yaml_file(path: str | PathLike[str], *, kind: str = "YAML") -> tuple[yaml.Node | None, Any]:
    """``(node tree, data)`` of the YAML (or JSON) file at ``path``; unreadable files and syntax errors
    are SpinesimErrors naming the file (and the line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpinesimError(f"cannot read the file: {error}", path=path) from None
    return parse_yaml(text, path=path, kind=kind)
