"""Scoring on the built-in spine (1 mm): grading an attempt, its distance maps, and the HTML report.

Baselines run in the same process on the same data:

- ``score`` of the expert attempt at the left L4-L5 transforaminal against replaying its session
  alone (the fold scoring cannot avoid): what measuring, flagging, the expert comparison and the
  grade add on top;
- the first ``score`` on a fresh anatomy (it builds the distance map of every structure group on a
  cropped box) against one scipy Euclidean distance transform of the whole label volume;
- the HTML report (four fluoroscopy frames, the 3D scene's meshes, the page) against one
  512 x 512 fluoroscopy frame of a new pose.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from anatomy_models.anatomy import Anatomy
from anatomy_models.store import load_anatomy
from benchmarks.measure import Measurement, best_time
from frontends.report import report_html
from scenarios.schema import load_scenario
from scoring.report import report_of, score
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.imaging.carm import CArm
from simulator.imaging.fluoro import render_fluoro
from simulator.session.fold import Session
from simulator.session.history import replay_attempt


def run() -> list[Measurement]:
    anatomy = load_anatomy("default")
    scenario = load_scenario("tfesi-default")
    session = Session(scenario, anatomy)
    log = expert_actions(scenario, session.target, plan_trajectory(session.tracer, session.target, session.spec))

    fresh = Anatomy(ct=anatomy.ct, label_table=anatomy.label_table, labels=anatomy.labels,
                    landmarks=anatomy.landmarks, directions=anatomy.directions, metadata=anatomy.metadata)
    first_score = best_time(lambda: score(scenario, fresh, log), repeats=1)
    edt = best_time(lambda: ndimage.distance_transform_edt(anatomy.labels.array == 0, sampling=anatomy.labels.spacing),
                    repeats=1)

    def replay():
        replay_session = Session(scenario, anatomy)
        for action in log:
            replay_session.apply(action)

    score(scenario, anatomy, log)  # distance maps and caches built
    replay_time = best_time(replay)
    score_time = best_time(lambda: score(scenario, anatomy, log))

    attempt = replay_attempt(scenario, anatomy, log)
    report = report_of(attempt)
    frame_time = best_time(lambda: render_fluoro(anatomy, CArm(primary_deg=float(np.random.uniform(-40, 40)),
                                                               isocenter=tuple(session.target.point))), repeats=2)
    html_time = best_time(lambda: report_html(attempt, report), repeats=1)
    return [
        Measurement("score an expert TFESI attempt", score_time, replay_time, "s", "replaying its session alone",
                    goal_max=15.0),
        Measurement("first score on a new anatomy (distance maps built)", first_score, edt, "s",
                    "one scipy EDT of the whole label volume", goal_max=3.0),
        Measurement("HTML report (4 frames, 3D scene, page)", html_time, frame_time, "s",
                    "one 512x512 frame at a new pose", goal_max=12.0),
    ]
