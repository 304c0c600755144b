"""YAML read for people: the parsed data together with its node tree, so that a later validation error
can name the line it comes from, and syntax errors that name line and column.

A YAML file is read under limits, checked before anything is built from it: its size, its nesting, and
the number of values once its aliases are expanded (a "billion laughs" of nested anchors is refused at
once instead of being expanded). Duplicate keys in a mapping are refused, naming both lines, instead of
the last one silently winning.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError

from anatomy_models.errors import SpinesimError, quoted

MAX_YAML_CHARS = 2_000_000  # characters of one YAML file (a scenario is a few kB)
MAX_YAML_DEPTH = 32  # nesting of mappings and sequences, counted through aliases
MAX_YAML_VALUES = 100_000  # values (nodes) once every alias is expanded
MAX_YAML_INT_DIGITS = 100  # digits of one integer

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader with a nesting limit while composing (the composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_tree(root: yaml.Node) -> None:
    """Refuse a tree that expands to too many or too deeply nested values, refers to itself, holds an
    over-long integer or a mapping with a key twice; raises ComposerError at the offending node."""
    expanded: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    in_progress: set[int] = set()

    def visit(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in expanded:
            return expanded[key]
        if key in in_progress:
            raise ComposerError(None, None, "an alias refers to the value that contains it", node.start_mark)
        in_progress.add(key)
        children = _children(node)
        values, depth = 1, 1
        for child in children:
            child_values, child_depth = visit(child)
            values, depth = values + child_values, max(depth, child_depth + 1)
        if values > MAX_YAML_VALUES:
            raise ComposerError(None, None, f"expands to more than {MAX_YAML_VALUES} values (through its aliases)",
                                node.start_mark)
        if depth > MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels (through its aliases)",
                                node.start_mark)
        in_progress.discard(key)
        expanded[key] = (values, depth)
        return values, depth

    visit(root)


def _children(node: yaml.Node) -> list[yaml.Node]:
    """The child nodes of ``node``, after checking its own scalar or its mapping's keys."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _INT_TAG and len(node.value) > MAX_YAML_INT_DIGITS:
            raise ComposerError(None, None, f"an integer of {len(node.value)} characters (at most "
                                            f"{MAX_YAML_INT_DIGITS} digits)", node.start_mark)
        return []
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    first_line: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
            identity = (key.tag, key.value)
            if identity in first_line:
                raise ComposerError(None, None, f"duplicate key {quoted(key.value)} (first given on line "
                                                f"{first_line[identity]})", key.start_mark)
            first_line[identity] = key.start_mark.line + 1
    return [child for pair in node.value for child in pair]


def parse_yaml(text: str, *, path: str | PathLike[str] | None = None, kind: str = "YAML") -> tuple[yaml.Node | None, Any]:
    """``(node tree, data)`` of YAML ``text``; a syntax error, a duplicate key or a limit exceeded
    (:data:`MAX_YAML_CHARS`, :data:`MAX_YAML_DEPTH`, :data:`MAX_YAML_VALUES`) names the line and column.

    Examples
    --------
    >>> node, data = parse_yaml("a: 1\\nb: [2, 3]\\n")
    >>> data, node.value[1][1].start_mark.line + 1
    ({'a': 1, 'b': [2, 3]}, 2)
    >>> parse_yaml("a: [1", path="x.yaml")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: x.yaml: line 1, column 6: not valid YAML (expected ',' or ']', but got '<stream end>')
    >>> parse_yaml("a: 1\\nb: 2\\na: 3\\n", path="x.yaml")
    Traceback (most recent call last):
    ...
    anatomy_models.errors.SpinesimError: x.yaml: line 3, column 1: not valid YAML (duplicate key 'a' (first given on line 1))
    """
    if len(text) > MAX_YAML_CHARS:
        raise SpinesimError(f"the {kind} text is {len(text)} characters long, more than the {MAX_YAML_CHARS} allowed",
                            path=path, hint="is this the right file?")
    loader = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_tree(node)
        return node, loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpinesimError(f"not valid {kind} ({problem})", path=path, where=where) from None
    except (ValueError, OverflowError) as error:  # a value of the right form out of range, e.g. 2024-13-45
        raise SpinesimError(f"not valid {kind} (a value cannot be read: {error})", path=path) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: str | PathLike[str], *, kind: str = "YAML") -> tuple[yaml.Node | None, Any]:
    """``(node tree, data)`` of the YAML (or JSON) file at ``path``; unreadable files, syntax errors and
    limits exceeded are SpinesimErrors naming the file (and the line)."""
    try:
        size_bytes = Path(path).stat().st_size
        if size_bytes > 4 * MAX_YAML_CHARS:  # UTF-8 takes at most 4 bytes a character
            raise SpinesimError(f"the file is {size_bytes} bytes, too big for a {kind} file of at most "
                                f"{MAX_YAML_CHARS} characters", path=path, hint="is this the right file?")
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpinesimError(f"cannot read the file: {error}", path=path) from None
    return parse_yaml(text, path=path, kind=kind)
