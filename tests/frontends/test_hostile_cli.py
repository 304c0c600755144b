"""Hostile text and output paths on the command line: what the user typed is printed as typed (never read
as terminal markup), long values are cut, and an output that cannot be written is refused by name."""

import errno
import json
import os
from pathlib import Path

import pytest

from anatomy_models.errors import MAX_MESSAGE_PART_CHARS
from frontends.cli import main

MARKUP = ["[/]", "[red]x[/red]", "[link=https://example.org]y", "[bold", "\\[/]"]
LIBRARY = Path(__file__).parents[2] / "scenarios" / "library" / "facet-default.yaml"


@pytest.mark.parametrize("text", MARKUP)
def test_markup_in_a_path_is_printed_as_typed(tmp_path, capsys, text):
    missing = tmp_path / f"scan{text}.nrrd"
    assert main(["anatomy", "info", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "Traceback" not in err


@pytest.mark.parametrize("text", MARKUP)
def test_markup_in_a_scenario_value_is_printed_as_typed(tmp_path, capsys, text):
    case = tmp_path / f"case{text.replace('/', '|')}.yaml"
    case.write_text(LIBRARY.read_text().replace("target: {level: L4-L5, side: left}",
                                                f"target: {{level: {json.dumps(text)}, side: left}}"))
    assert main(["scenario", "validate", str(case)]) == 1
    out = capsys.readouterr().out
    assert f"invalid: {case}: line 13, field 'target.level'" in out and repr(text) in out


def test_a_stored_anatomy_that_is_a_path_is_refused_naming_the_field(tmp_path, capsys):
    case = tmp_path / "case.yaml"
    case.write_text(LIBRARY.read_text().replace("anatomy: {builtin: default}", "anatomy: {stored: ../../etc}"))
    assert main(["scenario", "validate", str(case)]) == 1
    captured = capsys.readouterr()
    assert f"{case}: line 11, field 'anatomy.stored': invalid anatomy name '../../etc'" in captured.out
    assert "names the file, the line and the field" in captured.err


def test_a_huge_value_is_not_echoed_whole(tmp_path, capsys):
    case = tmp_path / "case.yaml"
    case.write_text(LIBRARY.read_text().replace("side: left}", "side: " + "x" * 1_000_000 + "}", 1))
    assert main(["scenario", "validate", str(case)]) == 1
    out = capsys.readouterr().out
    assert "field 'target.side'" in out and "xxx...xxx" in out and len(out) < 2 * MAX_MESSAGE_PART_CHARS


def test_a_billion_laughs_scenario_is_refused_fast(tmp_path, capsys):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    case = tmp_path / "laughs.yaml"
    case.write_text(LIBRARY.read_text().replace("objectives:", "\n".join(lines) + "\nobjectives:"))
    assert main(["scenario", "validate", str(case)]) == 1
    assert "expands to more than" in capsys.readouterr().out


def test_duplicate_keys_in_a_scenario_are_refused(tmp_path, capsys):
    case = tmp_path / "dup.yaml"
    case.write_text(LIBRARY.read_text() + "seed: 99\n")
    assert main(["scenario", "validate", str(case)]) == 1
    assert "duplicate key 'seed'" in capsys.readouterr().out


@pytest.mark.parametrize("args, expected", [
    (["scenario", "new", "facet_intra_articular", "-o", "{file}/case.yaml"], "is a file, not a folder"),
    (["scenario", "schema", "-o", "{dir}"], "is a directory"),
    (["scenario", "preview", "facet-default", "-o", "{file}"], "is a file"),
    (["fluoro", "default", "-o", "{dir}"], "is a directory"),
    (["ultrasound", "-o", "{file}/deeper/x.png"], "is a file, not a folder"),
    (["report", "{log}", "-o", "{file}/r.html"], "is a file, not a folder"),
    (["explain", "facet-default", "-o", "{file}"], "is a file"),
    (["anatomy", "export", "default", "--format", "dicom", "-o", "{file}/x/y"], "is a file, not a folder"),
    (["run", "facet-default", "--expert", "-o", "{file}/x.jsonl"], "is a file, not a folder"),
    (["anatomy", "export", "default", "-o", "{file}/out"], "is a file, not a folder"),
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, args, expected):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    log = tmp_path / "attempt.jsonl"
    log.write_text('{"type": "finish", "t": 1}\n')
    filled = [arg.format(file=a_file, dir=tmp_path, log=log) for arg in args]
    assert main(filled) == 2
    assert expected in capsys.readouterr().err


def test_a_read_only_place_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root, chmod would not stop a write
    assert main(["scenario", "new", "facet_intra_articular", "-o", str(tmp_path / "case.yaml")]) == 2
    assert "is read-only" in capsys.readouterr().err


def test_a_write_the_system_refuses_is_a_user_error_naming_the_file(tmp_path, capsys, monkeypatch):
    target = tmp_path / "case.yaml"

    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    assert main(["scenario", "new", "facet_intra_articular", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "case.yaml" in err and "Read-only file system" in err and "internal" not in err


def test_a_progress_bar_shows_a_file_name_with_markup_as_typed(monkeypatch):
    from rich.console import Console

    from frontends import cli

    recorded = Console(record=True, force_terminal=True, width=200)
    monkeypatch.setattr(cli, "console", recorded)
    with cli.progress_bar("importing [/]scan[red].nrrd") as report:
        report(1, 2, "slice [link=x]3")
    assert "Traceback" not in recorded.export_text()


@pytest.mark.parametrize("args, expected", [
    (["fluoro", "--angle", "nan", "-o", "x.png"], "'nan' is not a finite number"),
    (["fluoro", "--tilt", "90", "-o", "x.png"], "-90<x<90"),
    (["fluoro", "--dose", "inf", "-o", "x.png"], "'inf' is not a finite number"),
    (["fluoro", "--seed", "-1", "-o", "x.png"], "0<=x<=4294967295"),
    (["fluoro", "--pixels", "100000000", "-o", "x.png"], "8<=x<=4096"),
    (["ultrasound", "--gain", "-inf", "-o", "x.png"], "'-inf' is not a finite number"),
    (["ultrasound", "--seed", str(2**80), "-o", "x.png"], "0<=x<=4294967295"),
    (["anatomy", "generate", "-o", "x", "--bmi", "nan"], "'nan' is not a finite number"),
    (["anatomy", "import", ".", "-o", "x", "--spacing", "0.001"], "x>=0.05"),
    (["scenario", "preview", "facet-default", "-o", "out", "--spacing", "0"], "x>0"),
    (["explain", "facet-default", "-o", "out", "--spacing", "nan"], "'nan' is not a finite number"),
])
def test_command_line_numbers_are_finite_and_in_range(tmp_path, monkeypatch, capsys, args, expected):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert expected in capsys.readouterr().err
