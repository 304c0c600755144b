"""Workstation memory: where one trainee's workstation holds its memory, stage by stage, and what two
workstations of the same patient on one server share.

Two child processes each do what a workstation does with the built-in 1 mm patient (``ilesi-default``):
load the patient and its tracer (:class:`frontends.web.patients.Patients`), warm up (imaging kernels, the DRR
of a pose, contrast: :func:`frontends.web.workstation.warm_up`), an attempt of 8 shots, the grade. After each
stage a child reports its resident set (RSS: every page it touches, shared or not) and its proportional set
(PSS: a page shared by two processes counts half to each; Linux ``/proc/<pid>/smaps_rollup``). With both
still alive, each reports them once more: that PSS is what a workstation costs the server. The baseline is the
same two workstations with private copies of everything (as before :func:`frontends.web.patients.shared_arrays`
mapped the patient's CT, label map and large derived tables from files every workstation shares). The largest
arrays the first child holds, and who holds them, are printed.

Run: ``python -m benchmarks memory`` (``SPINESIM_MEMORY_SCENARIO`` for another library case).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.measure import Measurement

WORKSTATIONS = 2
SHOTS = 8
GOAL_GB = 0.3


def _memory_mb() -> tuple[float, float]:
    """This process's RSS and PSS, MB."""
    found = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            found[name] = int(value.split()[0]) / 1024
    return found["Rss"], found["Pss"]


def _report(stage: str) -> None:
    from frontends.web.workstation import release_freed_memory

    gc.collect()
    release_freed_memory()
    rss, pss = _memory_mb()
    print(json.dumps({"stage": stage, "rss_mb": rss, "pss_mb": pss}), flush=True)


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


def workstation(scenario_id: str, private: bool) -> None:
    """One child: the stages of the module docstring, then wait for the parent's line to report once more."""
    _report("started")
    import frontends.web.patients as patients_module
    from frontends.store import Store
    from frontends.web.attempt import LiveAttempt
    from frontends.web.workstation import warm_up
    from scenarios.schema import library_scenarios

    if private:  # the baseline: each workstation its own copy of every array
        patients_module.shared_arrays = lambda anatomy, folder: anatomy
    _report("imported")
    scenario = library_scenarios()[scenario_id]
    patients = patients_module.Patients(None)
    anatomy, tracer = patients.of(scenario)
    _report("patient and tracer loaded")
    warm_up(scenario, patients)
    _report("warmed up")
    store = Store("sqlite://")
    attempt = LiveAttempt.start(store, store.add_user("trainee", "trainee", "a-long-password").id, scenario,
                                anatomy, tracer)
    for _ in range(SHOTS):
        attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    _report(f"attempt with {SHOTS} shots")
    attempt.act({"type": "finish"})
    _report("graded")
    print(json.dumps({"holders": _holders({"anatomy": anatomy, "tracer": tracer})}), flush=True)
    sys.stdin.readline()
    _report("beside the other workstation")


def _round(scenario_id: str, private: bool) -> list[list[dict]]:
    """Run :data:`WORKSTATIONS` children at once; each one's reports in order."""
    command = [sys.executable, "-c", f"from benchmarks.bench_memory import workstation; "
                                     f"workstation({scenario_id!r}, {private})"]
    children = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=dict(os.environ)) for _ in range(WORKSTATIONS)]
    reports: list[list[dict]] = [[] for _ in children]
    for child, found in zip(children, reports):
        for line in child.stdout:
            found.append(json.loads(line))
            if "holders" in found[-1]:
                break
    for child in children:
        child.stdin.write("measure\n")
        child.stdin.flush()
    for child, found in zip(children, reports):
        found += [json.loads(line) for line in child.stdout]
        child.wait()
    return reports


def run() -> list[Measurement]:
    scenario_id = os.environ.get("SPINESIM_MEMORY_SCENARIO", "ilesi-default")
    measured = {}
    for private in (True, False):
        reports = _round(scenario_id, private)
        name = "private copies" if private else "shared CT, labels and derived tables"
        print(f"{name}: one workstation's stages (MB)")
        for report in reports[0]:
            if "stage" in report:
                print(f"  {report['stage']:32s} RSS {report['rss_mb']:6.0f}  PSS {report['pss_mb']:6.0f}")
        if not private:
            print("  largest arrays held: " + "; ".join(f"{path} {mb:.0f} MB"
                                                      for path, mb in reports[0][-2]["holders"]))
        measured[private] = [report[-1] for report in reports]
    pss = {private: statistics.median(r["pss_mb"] for r in found) / 1e3 for private, found in measured.items()}
    rss = statistics.median(r["rss_mb"] for r in measured[False]) / 1e3
    return [Measurement(f"a workstation's PSS after an attempt, {WORKSTATIONS} of the same patient (median)",
                        pss[False], GOAL_GB, "GB", "the goal, 0.3 GB", goal_max=1.0),
            Measurement("the same with private copies of every array (the baseline)", pss[True], pss[False],
                        "GB", "shared"),
            Measurement("a workstation's RSS after an attempt (its shared pages counted whole)", rss, GOAL_GB, "GB",
                        "the goal, 0.3 GB")]
