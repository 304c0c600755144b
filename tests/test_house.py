"""The house in one direction: packages import only downward, and no two rooms import each other.

anatomy_models < scenarios < simulator < scoring < frontends; inside the engine, needle < imaging <
case < session. An import is read from the source (``import x`` and ``from x import y``, at any depth,
including inside functions), so a lazy import that runs upward is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lower rank first: a room may import only rooms of lower or equal rank.
ROOMS = ["anatomy_models", "scenarios", "simulator.needle", "simulator.imaging", "simulator.case", "simulator.session",
         "simulator", "scoring", "frontends"]
PACKAGES = ("anatomy_models", "scenarios", "simulator", "scoring", "frontends", "assets")


def room_of(module: str) -> str | None:
    """The room a dotted module name is in (the longest matching entry of :data:`ROOMS`)."""
    matches = [room for room in ROOMS if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every project module ``path`` imports, as dotted names (relative imports resolved)."""
    here = module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (package[:len(package) - node.level + 1] if node.level else []) + ([node.module] if node.module else [])
            name = ".".join(base)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from simulator import session`
    return {name for name in found if name.split(".")[0] in PACKAGES}


def room_imports(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the files that import across, for every pair of different rooms."""
    crossings: dict[tuple[str, str], set[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = room_of(module_name(path, root))
            for name in imports_of(path, root):
                target = room_of(name)
                if source and target and target != source:
                    crossings.setdefault((source, target), set()).add(str(path.relative_to(root)))
    return {pair: sorted(files) for pair, files in crossings.items()}


def upward(crossings: dict[tuple[str, str], list[str]]) -> dict[str, list[str]]:
    return {f"{a} -> {b}": files for (a, b), files in crossings.items() if ROOMS.index(b) > ROOMS.index(a)}


def test_no_package_imports_upward():
    assert upward(room_imports()) == {}


def test_no_two_rooms_import_each_other():
    pairs = room_imports()
    cycles = sorted(f"{a} <-> {b}" for a, b in pairs if (b, a) in pairs and a < b)
    assert cycles == []


@pytest.mark.parametrize("line, room", [("from frontends.web import portal", "frontends"),
                                        ("import scoring.report", "scoring"),
                                        ("from simulator.session import fold", "simulator.session"),
                                        ("from ..imaging.carm import CArm", "simulator.imaging")])
def test_the_check_sees_an_upward_import(tmp_path, line, room):
    """The guard itself: an upward import planted inside a function of the engine's lowest room is found."""
    planted = tmp_path / "simulator" / "needle" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"def later():\n    {line}\n")
    assert upward(room_imports(tmp_path)) == {f"simulator.needle -> {room}": ["simulator/needle/planted.py"]}


def test_the_engine_exports_the_verbs_a_user_calls():
    import simulator
    from simulator.imaging.carm import CArm
    from simulator.session.replay import replay

    assert simulator.CArm is CArm and simulator.replay is replay
    assert all(callable(getattr(simulator, name)) for name in simulator.__all__)
