"""The cases a server offers: the built-in library and the scenario files of folders an instructor
names (``spinesim serve --scenarios DIR``), grouped by where they come from.

Each folder's ``*.yaml`` and ``*.yml`` files (not its subfolders) are validated when the catalogue is
read. A file that does not validate is left out, with a warning that names the file, the YAML line
and the field (:func:`scenarios.schema.scenario_from_yaml`), and the others are served. Two files
declaring the same id are refused, naming both files: a trainee's attempts are filed by the case's
id, so an id must mean one case. A served case's relative anatomy paths are made absolute from its
file's folder, so it loads the same whatever the server's working folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from anatomy_models.errors import SpinesimError
from scenarios.library import library_files
from scenarios.schema import Scenario, scenario_from_yaml

LIBRARY = "library"
SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass
class Catalogue:
    """Scenarios by id, with the group each belongs to and the file it came from.

    Parameters
    ----------
    scenarios : dict
        Scenario id -> :class:`Scenario`.
    groups : dict
        Scenario id -> its group: ``library``, or the name of the folder it was served from.
    files : dict
        Scenario id -> the file it was read from (for messages).
    warnings : list of str
        Why files were left out (file, line and field), in the order they were read.
    """

    scenarios: dict[str, Scenario] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, scenario: Scenario, group: str, file: str) -> None:
        """Offer ``scenario`` in ``group``.

        Raises
        ------
        SpinesimError
            If another file already declared its id.
        """
        if scenario.id in self.scenarios:
            raise SpinesimError(f"the scenario id {scenario.id!r} is declared twice, here and in "
                                f"{self.files[scenario.id]}", path=file, where="field 'id'",
                                hint="give one of the two cases another id, or serve only one of the folders")
        self.scenarios[scenario.id] = scenario
        self.groups[scenario.id] = group
        self.files[scenario.id] = file

    def group_names(self) -> list[str]:
        """The groups in the order they were added (the library first)."""
        return list(dict.fromkeys(self.groups.values()))


def read_catalogue(folders: Sequence[str | Path] = ()) -> Catalogue:
    """The library's scenarios and those of ``folders`` (see the module docstring).

    Examples
    --------
    >>> catalogue = read_catalogue()
    >>> catalogue.groups["ilesi-default"], catalogue.warnings
    ('library', [])

    Raises
    ------
    SpinesimError
        If a folder does not exist, or two files declare the same id.
    """
    catalogue = Catalogue()
    for entry in library_files():
        file = f"scenarios/library/{entry.name}"
        catalogue.add(scenario_from_yaml(entry.read_text(encoding="utf-8"), path=file), LIBRARY, file)
    names = group_names([Path(folder) for folder in folders])
    for folder, group in names.items():
        _add_folder(catalogue, folder, group)
    return catalogue


def group_names(folders: Sequence[Path]) -> dict[Path, str]:
    """Each folder's group in the picker: its name, or its whole path where two folders share a name
    (or one is called ``library``).

    Examples
    --------
    >>> list(group_names([Path("/srv/ward-a"), Path("/srv/x/cases"), Path("/srv/y/cases")]).values())
    ['ward-a', '/srv/x/cases', '/srv/y/cases']
    """
    resolved = list(dict.fromkeys(folder.expanduser().resolve() for folder in folders))
    taken = [folder.name for folder in resolved] + [LIBRARY]
    return {folder: folder.name if taken.count(folder.name) == 1 else str(folder) for folder in resolved}


def _add_folder(catalogue: Catalogue, folder: Path, group: str) -> None:
    if not folder.is_dir():
        raise SpinesimError("no such folder of scenarios", path=folder,
                            hint="give --scenarios a folder holding scenario YAML files")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in SCENARIO_SUFFIXES and path.is_file())
    if not files:
        catalogue.warnings.append(str(SpinesimError("the folder holds no scenario files (*.yaml, *.yml)", path=folder)))
    for path in files:
        try:
            scenario = read_scenario_file(path)
        except SpinesimError as error:
            catalogue.warnings.append(str(error))
            continue
        catalogue.add(scenario, group, str(path))


def read_scenario_file(path: Path) -> Scenario:
    """The scenario in ``path``, validated, its relative anatomy paths made absolute (it then loads the same
    wherever it is used from)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpinesimError(f"cannot read the scenario: {error}", path=path) from None
    scenario = scenario_from_yaml(text, path=path)
    return scenario.model_copy(update={"anatomy": scenario.anatomy.resolved(path.parent)})
