"""Issue 19's independent check, wider than the suite: the examiner's ordering at every lumbar level and side.

    python -m benchmarks.grade_order [tfesi ilesi facet mbb]   # all four: about 15 minutes on two cores

The suite's validation set (tests/scoring/test_grade_order.py) grades scripted attempts at the library's
cases, L3-L4 to L5-S1. Here the transforaminal, interlaminar, facet and medial branch cases are moved to
every level L1-L2 to L5-S1 (the medial branch block to the L1-L4 medial branches and the L5 dorsal ramus)
and both sides, on the 2 mm built-in patient, and each is played by the suite's expert, competent and novice
scripts and its single-complication scripts (:data:`UNSAFE`). Every broken ordering an examiner would
mark is counted: expert >= competent + 5 > novice, the expert and the competent pass, the novice fails, no
critical flag on a safe attempt, and every unsafe attempt fails, names its complication and ranks below the
novice. A script that finds no path at a level is reported, not counted. Not a speed benchmark (it is not
among ``python -m benchmarks``'s ratios); it exits non-zero when any ordering breaks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

from anatomy_models.errors import SpinesimError
from scenarios.schema import Scenario, library_scenarios
from scoring.report import Report, score
from simulator.session.fold import Session
from tests.scoring import test_grade_order as validation
from tests.scoring.attempts import competent_log, expert_log, novice_log

BASES = {"tfesi": "tfesi-default", "ilesi": "ilesi-default", "facet": "facet-default", "mbb": "mbb-default"}
LEVELS = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
NERVES = ("L1 medial branch", "L2 medial branch", "L3 medial branch", "L4 medial branch", "L5 dorsal ramus")
# The suite's single-complication scripts, played at every moved case of the procedure, with the flag each
# must raise.
UNSAFE: dict[str, list[tuple[Callable, str]]] = {
    "tfesi": [(validation._blind, "blind_injection"), (validation._root_injection, "intraneural_injection"),
              (validation._intrathecal, "intrathecal_injection"), (validation._into_disc, "intradiscal"),
              (validation._too_deep, "beyond_ventral_epidural")],
    "ilesi": [(validation._blind, "blind_injection")],
    "facet": [(validation._blind, "blind_injection")],
    "mbb": [(validation._live_throughout, "excessive_fluoro_time")],
}


def moved_cases(procedure: str) -> Iterator[tuple[str, Scenario]]:
    """The procedure's library case at every level and side (named ``tfesi-L2-L3-right`` and so on)."""
    base = library_scenarios()[BASES[procedure]]
    for level, nerve in zip(LEVELS, NERVES, strict=True):
        for side in ("left", "right"):
            update = {"side": side} | ({"nerve": nerve} if procedure == "mbb" else {"level": level})
            target = base.target.model_copy(update=update)
            yield f"{procedure}-{level}-{side}", base.model_copy(update={"target": target})


def patient(scenario: Scenario, patients: dict) -> object:
    """The scenario's patient on the 2 mm grid, loaded once per distinct patient into ``patients``."""
    key = scenario.anatomy.spine_parameters(spacing_mm=2.0).cache_key()
    if key not in patients:
        patients[key] = scenario.anatomy.load(spacing_mm=2.0)
    return patients[key]


def played(scenario: Scenario, anatomy, make_log: Callable) -> Report | str:
    """The report of ``make_log``'s attempt, or why the script found no attempt to play."""
    try:
        return score(scenario, anatomy, make_log(Session(scenario, anatomy)))
    except (AssertionError, SpinesimError) as error:  # the scripts' "no path to ..." at this level
        return f"{make_log.__name__}: {error}"


def safe_breaks(expert: Report, competent: Report, novice: Report) -> list[str]:
    """The orderings among the safe attempts an examiner would mark as wrong."""
    breaks = []
    if not expert.grade >= competent.grade + 5.0:
        breaks.append(f"expert {expert.grade:.1f} < competent {competent.grade:.1f} + 5")
    if not competent.grade > novice.grade:
        breaks.append(f"competent {competent.grade:.1f} <= novice {novice.grade:.1f}")
    for label, report, should_pass in (("expert", expert, True), ("competent", competent, True),
                                       ("novice", novice, False)):
        if report.passed != should_pass:
            failed = [g.name for g in report.gates if not g.passed]
            breaks.append(f"{label} {'fails' if should_pass else 'passes'} ({report.grade:.1f}, gates failed {failed})")
        critical = [f.code for f in report.flags if f.severity == "critical"]
        if critical:
            breaks.append(f"{label} has a critical flag {critical}")
    return breaks


def unsafe_breaks(unsafe: Report, code: str, novice: Report, name: str) -> list[str]:
    """An unsafe attempt that passes, does not name its complication or ranks at or above the novice."""
    breaks = []
    if code not in {f.code for f in unsafe.flags}:
        breaks.append(f"{name} does not raise {code} ({sorted(f.code for f in unsafe.flags)})")
    if unsafe.passed:
        breaks.append(f"{name} passes ({unsafe.grade:.1f})")
    if not novice.grade > unsafe.grade:
        breaks.append(f"{name} {unsafe.grade:.1f} >= novice {novice.grade:.1f}")
    return breaks


def main(procedures: list[str]) -> int:
    unknown = sorted(set(procedures) - set(BASES))
    if unknown:
        print(f"unknown procedure(s) {unknown}: choose from {sorted(BASES)}", file=sys.stderr)
        return 2
    patients: dict = {}
    attempts = breaks = 0
    for procedure in procedures:
        for name, scenario in moved_cases(procedure):
            started = time.perf_counter()
            anatomy = patient(scenario, patients)
            safe = [played(scenario, anatomy, make) for make in (expert_log, competent_log, novice_log)]
            attempts += 3
            if any(isinstance(r, str) for r in safe):
                print(f"{name}: not played ({'; '.join(r[:90] for r in safe if isinstance(r, str))})", flush=True)
                continue
            expert, competent, novice = safe
            found = safe_breaks(expert, competent, novice)
            for make, code in UNSAFE[procedure]:
                attempts += 1
                unsafe = played(scenario, anatomy, make)
                if isinstance(unsafe, str):
                    print(f"  {name}: not played ({unsafe[:90]})", flush=True)
                    continue
                found += unsafe_breaks(unsafe, code, novice, make.__name__.strip("_"))
            breaks += len(found)
            print(f"{name:20s} expert {expert.grade:5.1f} competent {competent.grade:5.1f} novice {novice.grade:5.1f}  "
                  f"{' | '.join(found) if found else 'in order'}  ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"{breaks} ordering breaks in {attempts} attempts")
    return 1 if breaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(BASES)))
