"""The whole hostile corpus (benchmarks/fuzz_corpus.py, made by the script, no committed binaries), one input a
test: each is a clear error naming its input, or, for valid input, read; never a traceback, an internal error,
a hang or a silent acceptance (issue 23). ``python -m benchmarks.fuzz_corpus`` prints the same as a tally."""

import pytest

from benchmarks.fuzz_corpus import CORPUS, run_one


@pytest.mark.parametrize("hostile", [pytest.param(hostile, id=hostile.name) for hostile in CORPUS
                                     if not hostile.needs_patient])
def test_each_hostile_input_is_a_clear_error_or_read(spinesim_home, tmp_path, hostile):
    outcome, said = run_one(hostile, tmp_path / "input", timeout_s=60)
    assert outcome == ("accepted" if hostile.valid else "clear error"), said
