"""Workstation memory: where one trainee's workstation holds its memory, stage by stage, and what two
workstations of the same patient on one server share.

Two child processes each do what a workstation does with the built-in 1 mm patient (``ilesi-default``):
load the patient and its tracer (:class:`frontends.web.patients.Patients`), warm up (imaging kernels, the DRR
of a pose, contrast: :func:`frontends.web.workstation.warm_up`), an attempt of 8 shots, the grade. After each
stage a child reports its resident set (RSS: every page it touches, shared or not) and its proportional set
(PSS: a page shared by two processes counts half to each; Linux ``/proc/<pid>/smaps_rollup``). With both
still alive, each reports them once more: that PSS is what a workstation costs the server. Three rounds:

* forked from the zygote (:mod:`frontends.web.zygote`, as the portal starts them): the imported modules'
  pages are shared with it; the zygote's own PSS is printed too (the server's fixed cost, once);
* processes of their own (as the portal started them before the zygote; the baseline);
* processes of their own with private copies of everything (as before :func:`frontends.web.patients.shared_arrays`
  mapped the patient's CT, label map and large derived tables from files every workstation shares).

The largest arrays the first child holds, and who holds them, are printed.

Run: ``python -m benchmarks memory`` (``SPINESIM_MEMORY_SCENARIO`` for another library case).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from benchmarks.measure import Measurement

WORKSTATIONS = 2
SHOTS = 8
GOAL_GB = 0.3


def _memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """Process ``pid``'s RSS and PSS, MB."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            found[name] = int(value.split()[0]) / 1024
    return found["Rss"], found["Pss"]


def _report(parent: Connection, stage: str) -> None:
    from frontends.web.workstation import release_freed_memory

    gc.collect()
    release_freed_memory()
    rss, pss = _memory_mb()
    parent.send({"stage": stage, "rss_mb": rss, "pss_mb": pss})


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
    _report(parent, "started")
    import frontends.web.patients as patients_module
    from frontends.store import Store
    from frontends.web.attempt import LiveAttempt
    from frontends.web.workstation import warm_up
    from scenarios.schema import library_scenarios

    if private:  # the baseline: each workstation its own copy of every array
        patients_module.shared_arrays = lambda anatomy, folder: anatomy
    _report(parent, "imported")
    scenario = library_scenarios()[scenario_id]
    patients = patients_module.Patients(None)
    anatomy, tracer = patients.of(scenario)
    _report(parent, "patient and tracer loaded")
    warm_up(scenario, patients)
    _report(parent, "warmed up")
    store = Store("sqlite://")
    attempt = LiveAttempt.start(store, store.add_user("trainee", "trainee", "a-long-password").id, scenario,
                                anatomy, tracer)
    for _ in range(SHOTS):
        attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    _report(parent, f"attempt with {SHOTS} shots")
    attempt.act({"type": "finish"})
    _report(parent, "graded")
    parent.send({"holders": _holders({"anatomy": anatomy, "tracer": tracer})})
    parent.recv()
    _report(parent, "beside the other workstation")
    rss, pss = _memory_mb(os.getppid())
    parent.send({"parent_rss_mb": rss, "parent_pss_mb": pss})


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
    scenario_id = os.environ.get("SPINESIM_MEMORY_SCENARIO", "ilesi-default")
    rounds = {"forked from the zygote, shared CT, labels and derived tables": (False, True),
              "processes of their own, shared CT, labels and derived tables": (False, False),
              "processes of their own, private copies of every array": (True, False)}
    measured, totals = {}, {}
    for name, (private, forked) in rounds.items():
        reports = _round(scenario_id, private, forked)
        print(f"{name}: one workstation's stages (MB)")
        for report in reports[0]:
            if "stage" in report:
                print(f"  {report['stage']:32s} RSS {report['rss_mb']:6.0f}  PSS {report['pss_mb']:6.0f}")
        if forked:
            print(f"  the zygote, beside its workstations: RSS {reports[0][-1]['parent_rss_mb']:.0f}  PSS "
                  f"{reports[0][-1]['parent_pss_mb']:.0f}")
            print("  largest arrays held: " + "; ".join(f"{path} {mb:.0f} MB"
                                                      for path, mb in reports[0][-3]["holders"]))
        measured[name] = [report[-2] for report in reports]
        # The server's memory for its workstations: their PSS summed (with the zygote's, which it holds once).
        totals[name] = (sum(report[-2]["pss_mb"] for report in reports)
                        + (reports[0][-1]["parent_pss_mb"] if forked else 0.0)) / 1e3
    pss = {name: statistics.median(r["pss_mb"] for r in found) / 1e3 for name, found in measured.items()}
    forked, own, private = pss.values()
    forked_total, own_total, _ = totals.values()
    rss = statistics.median(r["rss_mb"] for r in measured[next(iter(rounds))]) / 1e3
    return [Measurement(f"a workstation's PSS after an attempt, {WORKSTATIONS} of the same patient forked from the "
                        "zygote (median)", forked, GOAL_GB, "GB", "the goal, 0.3 GB", goal_max=1.0),
            Measurement("the same, processes of their own (the baseline)", own, forked, "GB", "forked"),
            Measurement("the same with private copies of every array", private, own, "GB", "shared arrays"),
            Measurement(f"the server's PSS for {WORKSTATIONS} workstations forked, the zygote's included", forked_total,
                        own_total, "GB", "processes of their own"),
            Measurement("a workstation's RSS after an attempt, forked (its shared pages counted whole)", rss, GOAL_GB,
                        "GB", "the goal, 0.3 GB")]
