"""Scoring: a pure function of (scenario, anatomy, action log) -> Report, as data (no images, no HTML).

``score`` (:mod:`scoring.report`) replays a logged attempt (:func:`simulator.session.replay.replay`;
``report_of`` reads a live session's history as it stands, :mod:`simulator.session.history`), measures it
(:mod:`scoring.metrics`, :mod:`scoring.exposure`), raises safety flags (:mod:`scoring.safety`), measures
near misses (:mod:`scoring.proximity`), compares with the expert path (:mod:`scoring.expert`), grades
(:mod:`scoring.grade`) and writes feedback (:mod:`scoring.feedback`). Beside the grade, not part of it:
the procedure's checklist (:mod:`scoring.checklist`) and a global rating scale (:mod:`scoring.rating`),
each item with the steps of the log behind it.
"""
