"""The cases a server offers: the library and the folders given to ``spinesim serve --scenarios``; a bad
file is left out with a warning naming its file, line and field; an id declared twice is refused naming
both files; relative anatomy paths are taken from the file's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from anatomy_models.errors import SpinesimError
from scenarios.catalogue import LIBRARY, read_catalogue

CASE = """\
id: {id}
title: A ward's own interlaminar case
brief: Place a Tuohy needle in the dorsal epidural space at L3-L4 from the right.
objectives:
  - Count the level on AP.
  - Judge depth on the contralateral oblique.
difficulty: advanced
anatomy: {{builtin: default}}
procedure: interlaminar_epidural
target: {{level: {level}, side: right}}
needle: {{kind: tuohy, gauge: 20, length_in: 3.5}}
"""


def write_case(folder: Path, name: str, case_id: str, level: str = "L3-L4") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(CASE.format(id=case_id, level=level), encoding="utf-8")
    return path


def test_a_folder_is_served_beside_the_library_and_a_bad_file_is_left_out_with_its_line(tmp_path):
    ward = tmp_path / "ward-a"
    write_case(ward, "l3l4.yaml", "ward-l3l4")
    bad = write_case(ward, "typo.yml", "ward-typo", level="L3-L5")
    (ward / "notes.txt").write_text("not a case")
    catalogue = read_catalogue([ward])
    assert catalogue.groups["ward-l3l4"] == "ward-a" and catalogue.groups["ilesi-default"] == LIBRARY
    assert catalogue.group_names() == [LIBRARY, "ward-a"]
    assert catalogue.scenarios["ward-l3l4"].objectives == ["Count the level on AP.",
                                                          "Judge depth on the contralateral oblique."]
    assert "ward-typo" not in catalogue.scenarios
    [warning] = catalogue.warnings
    assert warning.startswith(f"{bad.resolve()}: line 10, field 'target.level': ") and "not adjacent" in warning


def test_an_id_declared_twice_is_refused_naming_both_files(tmp_path):
    first = write_case(tmp_path / "ward-a", "one.yaml", "shared-case")
    second = write_case(tmp_path / "ward-b", "two.yaml", "shared-case")
    with pytest.raises(SpinesimError) as refused:
        read_catalogue([tmp_path / "ward-a", tmp_path / "ward-b"])
    assert str(second.resolve()) in str(refused.value) and str(first.resolve()) in str(refused.value)
    assert "declared twice" in str(refused.value)
    write_case(tmp_path / "ward-c", "mine.yaml", "ilesi-default")
    with pytest.raises(SpinesimError, match="scenarios/library/ilesi-default.yaml"):
        read_catalogue([tmp_path / "ward-c"])


def test_relative_anatomy_paths_are_taken_from_the_files_folder(tmp_path):
    (tmp_path / "patients" / "ct").mkdir(parents=True)
    ward = tmp_path / "cases"
    path = write_case(ward, "own.yaml", "own-patient")
    path.write_text(path.read_text().replace("{builtin: default}", "{path: ../patients/ct}"))
    anatomy = read_catalogue([ward]).scenarios["own-patient"].anatomy
    assert Path(anatomy.path).is_absolute() and Path(anatomy.path).resolve() == (tmp_path / "patients" / "ct").resolve()


def test_folders_sharing_a_name_are_told_apart_and_a_missing_or_empty_folder_is_reported(tmp_path):
    write_case(tmp_path / "x" / "cases", "a.yaml", "case-a")
    write_case(tmp_path / "y" / "cases", "b.yaml", "case-b")
    (tmp_path / "empty").mkdir()
    catalogue = read_catalogue([tmp_path / "x" / "cases", tmp_path / "y" / "cases", tmp_path / "empty"])
    assert catalogue.groups["case-a"] == str((tmp_path / "x" / "cases").resolve())
    empty = (tmp_path / "empty").resolve()
    assert catalogue.warnings == [f"{empty}: the folder holds no scenario files (*.yaml, *.yml)"]
    with pytest.raises(SpinesimError, match="no such folder of scenarios"):
        read_catalogue([tmp_path / "missing"])
