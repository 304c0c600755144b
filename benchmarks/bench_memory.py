"""Workstation memory: where one trainee's workstation holds its memory, stage by stage, and what two
workstations of the same patient on one server share.

Two child processes each do what a workstation does with the built-in 1 mm patient (``ilesi-default``):
load the patient and its tracer (:class:`frontends.web.patients.Patients`), warm up (imaging kernels, the DRR
of a pose, contrast: :func:`frontends.web.workstation.warm_up`; then the workstation waits, idle), a full
attempt (the expert's: shots at its 4 C-arm poses, the needle, loss of resistance, contrast, the grade, the
full HTML report), then a second one. After each stage a child reports its resident set (RSS: every page it
touches, shared or not), its proportional set (PSS: a page shared by two processes counts half to each) and its
unique set (USS: the pages no other process has, what the server gains back when the workstation ends; Linux
``/proc/<pid>/smaps_rollup``). With both still alive, each reports them once more: that PSS is what a
workstation costs the server. Three rounds (``SPINESIM_MEMORY_ROUNDS=1``: the first only):

* forked from the zygote (:mod:`frontends.web.zygote`, as the portal starts them): the imported modules'
  pages are shared with it; the zygote's own PSS is printed too (the server's fixed cost, once);
* processes of their own (as the portal started them before the zygote; the baseline);
* processes of their own with private copies of everything (as before :func:`frontends.web.patients.shared_arrays`
  mapped the patient's CT, label map and large derived tables from files every workstation shares).

The largest arrays the first child holds, and who holds them, are printed, and what the first attempt left
allocated in Python and numpy (``tracemalloc``, by the line that allocated it) once it ended.

Run: ``python -m benchmarks memory`` (``SPINESIM_MEMORY_SCENARIO`` for another library case).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from anatomy_models.derived import array_bytes
from benchmarks.measure import Measurement

WORKSTATIONS = 2
GOAL_GB = 0.3
# A second attempt may leave what a workstation keeps on purpose beside the first's (its patient's poses, its
# report's images: bounded caches), not a copy of everything: its USS grows by at most this share [ED].
GOAL_SECOND_ATTEMPT_GROWTH = 0.10
STAGES = ("started", "imported", "patient and tracer loaded", "warmed up, idle", "after a full attempt",
          "after a second attempt")


def _memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Process ``pid``'s RSS, PSS and USS (its private pages, clean and dirty), MB."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            found[name] = int(value.split()[0]) / 1024
    return {"rss_mb": found["Rss"], "pss_mb": found["Pss"], "uss_mb": found["Private_Clean"] + found["Private_Dirty"]}


def _report(parent: Connection, stage: str) -> None:
    from frontends.web.workstation import release_freed_memory

    gc.collect()
    release_freed_memory()
    parent.send({"stage": stage} | _memory_mb())


def full_attempt(store, user_id: int, scenario, anatomy, tracer) -> None:
    """The expert's attempt at ``scenario`` in a workstation (:class:`frontends.web.attempt.LiveAttempt`: every
    shot rendered as the monitor shows it), graded, with its full HTML report written as the Report tab asks; then
    the patient's mapped pages let go of, as the workstation does when the report is written
    (:func:`frontends.web.patients.release_mapped_pages`)."""
    from frontends.web.attempt import LiveAttempt
    from frontends.web.patients import release_mapped_pages
    from simulator.case.planner import expert_actions, plan_trajectory

    attempt = LiveAttempt.start(store, user_id, scenario, anatomy, tracer)
    session = attempt.session
    for record in expert_actions(scenario, session.target, plan_trajectory(tracer, session.target, session.spec)):
        attempt.act({key: value for key, value in record.items() if key != "t"})
    attempt.report_page()
    release_mapped_pages(anatomy)


def _holders(roots: dict, limit: int = 8) -> list[tuple[str, float]]:
    """The largest arrays reachable from ``roots`` (by attribute, item and key) and a path to each, MB."""
    found: dict[int, tuple[str, float]] = {}
    seen: set[int] = set()
    stack = list(roots.items())
    while stack:
        path, value = stack.pop()
        if id(value) in seen or path.count(".") > 8:
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            base = value if value.base is None or not isinstance(value.base, np.ndarray) else value.base
            found.setdefault(id(base), (path[:110], value.nbytes / 1e6))
        elif isinstance(value, dict):
            stack += [(f"{path}[{str(key)[:40]}]", item) for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            stack += [(f"{path}[{number}]", item) for number, item in enumerate(value)]
        elif hasattr(value, "__dict__"):
            stack += [(f"{path}.{name}", item) for name, item in vars(value).items()]
    return sorted(found.values(), key=lambda item: -item[1])[:limit]


def workstation(scenario_id: str, private: bool, parent: Connection) -> None:
    """One child: the stages of the module docstring, then wait for the parent's word to report once more."""
    _report(parent, STAGES[0])
    import frontends.web.patients as patients_module
    from frontends.store import Store
    from frontends.web.workstation import warm_up
    from scenarios.schema import library_scenarios

    if private:  # the baseline: each workstation its own copy of every array
        patients_module.shared_arrays = lambda anatomy, folder: anatomy
    _report(parent, STAGES[1])
    scenario = library_scenarios()[scenario_id]
    patients = patients_module.Patients(None)
    anatomy, tracer = patients.of(scenario)
    _report(parent, STAGES[2])
    warm_up(scenario, patients)
    _report(parent, STAGES[3])
    store = Store("sqlite://")
    trainee = store.add_user("trainee", "trainee", "a-long-password").id
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    full_attempt(store, trainee, scenario, anatomy, tracer)
    gc.collect()
    left = tracemalloc.take_snapshot().compare_to(before, "lineno")
    tracemalloc.stop()
    _report(parent, STAGES[4])
    full_attempt(store, trainee, scenario, anatomy, tracer)
    _report(parent, STAGES[5])
    parent.send({"holders": _holders({"anatomy": anatomy, "tracer": tracer}),
                 "left": [(str(stat.traceback[0])[-90:], stat.size_diff / 1e6) for stat in left[:6]],
                 "shelves": {str(shelf)[:40]: (len(values), array_bytes(values) / 1e6)
                             for shelf, values in anatomy.derived._shelves.items()}})
    parent.recv()
    _report(parent, "beside the other workstation")
    parent.send({"parent": _memory_mb(os.getppid())})


def _round(scenario_id: str, private: bool, forked: bool) -> list[list[dict]]:
    """Run :data:`WORKSTATIONS` children at once, forked from the zygote or started afresh (``spawn``: a new
    interpreter, as ``subprocess`` starts one); each one's reports in order."""
    from frontends.web.zygote import zygote

    context = zygote() if forked else multiprocessing.get_context("spawn")
    pipes = [multiprocessing.Pipe() for _ in range(WORKSTATIONS)]
    children = [context.Process(target=workstation, args=(scenario_id, private, child)) for _, child in pipes]
    for child, (_, theirs) in zip(children, pipes):
        child.start()
        theirs.close()  # the child's end is the child's: a child that dies ends our recv (EOFError)
    reports: list[list[dict]] = [[] for _ in children]
    for (ours, _), found in zip(pipes, reports):
        while not found or "holders" not in found[-1]:
            found.append(ours.recv())
    for ours, _ in pipes:
        ours.send("measure")
    for (ours, _), found in zip(pipes, reports):
        found += [ours.recv(), ours.recv()]
    for child in children:
        child.join()
    return reports


def run() -> list[Measurement]:
    from anatomy_models.store import load_anatomy

    scenario_id = os.environ.get("SPINESIM_MEMORY_SCENARIO", "ilesi-default")
    rounds = {"forked from the zygote, shared CT, labels and derived tables": (False, True),
              "processes of their own, shared CT, labels and derived tables": (False, False),
              "processes of their own, private copies of every array": (True, False)}
    rounds = dict(list(rounds.items())[:int(os.environ.get("SPINESIM_MEMORY_ROUNDS", len(rounds)))])
    # The baseline: the patient's CT, the one array every workstation must read (int16, 2 bytes a voxel).
    ct_gb = load_anatomy("default").ct.array.nbytes / 1e9
    measured, totals, stages = {}, {}, {}
    for name, (private, forked) in rounds.items():
        reports = _round(scenario_id, private, forked)
        print(f"{name}: one workstation's stages (MB)")
        for report in reports[0]:
            if "stage" in report:
                print(f"  {report['stage']:32s} RSS {report['rss_mb']:6.0f}  PSS {report['pss_mb']:6.0f}  "
                      f"USS {report['uss_mb']:6.0f}")
        if forked:
            zygote = reports[0][-1]["parent"]
            print(f"  the zygote, beside its workstations: RSS {zygote['rss_mb']:.0f}  PSS {zygote['pss_mb']:.0f}")
            print("  largest arrays held: " + "; ".join(f"{path} {mb:.0f} MB"
                                                      for path, mb in reports[0][-3]["holders"]))
            print("  what the first attempt left allocated (tracemalloc): " + "; ".join(
                f"{line} {mb:+.1f} MB" for line, mb in reports[0][-3]["left"]))
            print("  the patient's per-pose shelves after two attempts (values, MB): " + "; ".join(
                f"{shelf} {count} {mb:.1f}" for shelf, (count, mb) in reports[0][-3]["shelves"].items()))
        measured[name] = [report[-2] for report in reports]
        stages[name] = [{report["stage"]: report for report in found if "stage" in report} for found in reports]
        # The server's memory for its workstations: their PSS summed (with the zygote's, which it holds once).
        totals[name] = (sum(report[-2]["pss_mb"] for report in reports)
                        + (reports[0][-1]["parent"]["pss_mb"] if forked else 0.0)) / 1e3

    def median(name: str, stage: str, kind: str) -> float:
        return statistics.median(found[stage][kind] for found in stages[name]) / 1e3

    first = next(iter(rounds))
    pss = {name: statistics.median(r["pss_mb"] for r in found) / 1e3 for name, found in measured.items()}
    results = [
        Measurement(f"a workstation's PSS after two attempts, {WORKSTATIONS} of the same patient forked from the "
                    "zygote (median)", pss[first], GOAL_GB, "GB", "the goal, 0.3 GB", goal_max=1.0),
        Measurement("its USS (private pages) idle, after warming up", median(first, STAGES[3], "uss_mb"), ct_gb,
                    "GB", "the patient's CT"),
        Measurement("its USS after a full attempt", median(first, STAGES[4], "uss_mb"), ct_gb, "GB",
                    "the patient's CT"),
        Measurement("its USS after a second attempt, against after the first (what a case leaves)",
                    median(first, STAGES[5], "uss_mb"), median(first, STAGES[4], "uss_mb"), "GB",
                    "after the first", goal_max=1.0 + GOAL_SECOND_ATTEMPT_GROWTH),
        Measurement("its PSS after a full attempt", median(first, STAGES[4], "pss_mb"), ct_gb, "GB",
                    "the patient's CT"),
        Measurement("its RSS after two attempts (its shared pages counted whole)",
                    statistics.median(r["rss_mb"] for r in measured[first]) / 1e3, GOAL_GB, "GB", "the goal, 0.3 GB")]
    if len(rounds) == 3:
        forked, own, private = pss.values()
        forked_total, own_total, _ = totals.values()
        results += [Measurement("the same PSS, processes of their own (the baseline)", own, forked, "GB", "forked"),
                    Measurement("the same with private copies of every array", private, own, "GB", "shared arrays"),
                    Measurement(f"the server's PSS for {WORKSTATIONS} workstations forked, the zygote's included",
                                forked_total, own_total, "GB", "processes of their own")]
    return results
