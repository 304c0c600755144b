"""The internal-error log keeps the subcommand and the exception, never the command line's values: a
folder named after a patient must not travel into the log."""

from pathlib import Path

import frontends.commands.anatomy as anatomy_command
from frontends.cli import log_internal_error, main


def test_the_internal_error_log_names_the_subcommand_but_no_argument(tmp_path, monkeypatch, capsys):
    patient = tmp_path / "Doe_Jane_19700101"
    patient.mkdir()

    def fail(source, **options):
        try:
            open(source / "missing.dcm")
        except OSError as error:
            raise ValueError(f"unexpected trouble with {source.name}") from error

    monkeypatch.setattr(anatomy_command, "import_anatomy", fail)
    argv = ["anatomy", "import", str(patient), "-o", "Doe-Jane", f"--labels={patient}"]
    monkeypatch.setattr("sys.argv", ["spinesim", *argv])
    assert main(argv) == 70
    log = Path(capsys.readouterr().err.split("Details were written to ")[1].split("; please")[0].replace("\n", ""))
    text = log.read_text()
    assert text.startswith("spinesim anatomy import (arguments not logged)\n")
    assert "ValueError: unexpected trouble with <argument>" in text
    assert "FileNotFoundError: [Errno 2] No such file or directory: '<path>'" in text
    assert "direct cause" in text and 'File "' in text  # the traceback itself is kept
    assert "Doe" not in text and str(tmp_path) not in text


def test_a_given_context_heads_the_log():
    folder = "/srv/patients/" + "Smith"  # built at run time: the traceback's code line shows the expression only
    try:
        raise RuntimeError(f"at {folder}/ct")
    except RuntimeError:
        text = Path(log_internal_error("workstation of user ann", argv=[])).read_text()
    assert text.startswith("workstation of user ann\n") and "RuntimeError: at <path>" in text and "Smith" not in text
