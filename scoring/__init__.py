"""Scoring: a pure function of (scenario, anatomy, action log) -> Report, and the HTML report.

``score`` (:mod:`scoring.report`) replays the attempt (:mod:`simulator.session.history`), measures it
(:mod:`scoring.metrics`, :mod:`scoring.exposure`), raises safety flags (:mod:`scoring.safety`), measures
near misses (:mod:`scoring.proximity`), compares with the expert path (:mod:`scoring.expert`), grades
(:mod:`scoring.grade`) and writes feedback (:mod:`scoring.feedback`).
"""
