import subprocess
import sys
from pathlib import Path

import numpy as np

from anatomy_models.nrrd import write_nrrd
from anatomy_models.volume import Volume
from frontends.cli import SUBCOMMANDS, main


def test_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


def test_help_summaries_are_the_commands_own(capsys):
    """``--help`` lists summaries without importing the commands: each must be its command's own."""
    import importlib

    for name, (target, summary) in SUBCOMMANDS.items():
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert command.get_short_help_str(limit=10**6) == summary, name


def test_help_imports_no_subcommand_and_no_numerics():
    script = ("import sys\nfrom frontends.cli import main\nassert main(['--help']) == 0\n"
              "print(sorted(m for m in sys.modules if m.startswith('frontends.commands.') or m.split('.')[0] in "
              "('numpy', 'numba', 'vtkmodules', 'scipy', 'pydantic', 'simulator', 'scoring')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[2])
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_readme_documents_every_subcommand():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert [name for name in SUBCOMMANDS if f"`spinesim {name}" not in readme] == []


def test_import_info_list_export_round_trip(tmp_path, capsys):
    volume = Volume.from_spacing(np.arange(60, dtype=np.int16).reshape(3, 4, 5), (1, 1, 2))
    source = write_nrrd(volume, tmp_path / "ct.nrrd")
    assert main(["anatomy", "import", str(source), "-o", "cli-test"]) == 0
    assert main(["anatomy", "list"]) == 0
    assert "cli-test" in capsys.readouterr().out
    assert main(["anatomy", "info", "cli-test"]) == 0
    info = capsys.readouterr().out
    assert "3 x 4 x 5" in info and "LPS" in info
    assert main(["anatomy", "export", "cli-test", "--format", "nrrd", "-o", str(tmp_path / "out.nrrd")]) == 0
    from anatomy_models.nrrd import read_nrrd

    np.testing.assert_array_equal(read_nrrd(tmp_path / "out.nrrd").array, volume.array)


def test_user_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "frontends.cli", "anatomy", "info", str(tmp_path / "missing.nrrd")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:") and "missing.nrrd" in result.stderr
