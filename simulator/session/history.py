"""An attempt's history as scoring reads it: the session's steps, in order.

A :class:`~simulator.session.fold.Session` keeps, for every action it applied, the state before and
after it and the events it caused (:class:`~simulator.session.fold.Step`). Everything the grade needs
follows from those steps: where the needle was, the path its tip travelled, what was injected and
imaged and when. A live session's history is read as it stands (the web app grades the session the
trainee just finished); a stored log is folded once by :func:`simulator.session.replay.replay`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anatomy_models.anatomy import Anatomy
from scenarios.schema import Scenario
from simulator.needle.shaft import Needle
from simulator.needle.trace import Tracer
from simulator.session.fold import Event, Session, SessionState, Step
from simulator.session.replay import Log, replay

# The tip path is sampled at least this finely (mm) for distances and path length.
PATH_STEP_MM = 0.5
# A redirect's pivot is drawn as an arc of this many pieces (the tip swings about the skin entry).
_ARC_PIECES = 8


@dataclass(frozen=True)
class Attempt:
    """An attempt's history: the session (with its target and tracer) and its steps in order."""

    scenario: Scenario
    session: Session
    steps: tuple[Step, ...]

    @classmethod
    def of(cls, session: Session) -> Attempt:
        """The history of ``session`` as it stands (live or replayed)."""
        return cls(session.scenario, session, tuple(session.steps))

    @property
    def final(self) -> SessionState:
        return self.session.state

    @property
    def events(self) -> list[Event]:
        return [event for step in self.steps for event in step.events]

    def events_of(self, kind: str) -> list[Event]:
        return [event for step in self.steps for event in step.events if event.kind == kind]

    def needles(self) -> list[tuple[float, Needle]]:
        """(time in s, needle) after every step that leaves a needle in the patient."""
        return [(step.t, step.after.needle) for step in self.steps if step.after.needle is not None]

    def tip_paths(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The path the tip travelled, as polylines (one per stretch between skin punctures).

        Returns a list of ``(points (n, 3) LPS mm, times (n,) s)``: each move runs straight from the
        old tip to the new one along the shaft, a redirect first back along the old shaft to the
        depth it was pulled back to and then on an arc about the skin entry to the new direction.
        """
        paths: list[tuple[list[np.ndarray], list[float]]] = []
        for step in self.steps:
            old, new = step.before.needle, step.after.needle
            if old is new:  # no needle, or a step that did not move it
                continue
            placed = any(e.kind == "needle_placed" for e in step.events)
            if placed or old is None:
                paths.append(([new.entry], [step.t]))
                old = None
            points, times = paths[-1]
            if old is not None and step.action.type == "redirect" and new is not None:
                pulled = next(e.data["depth_mm"] for e in step.events if e.kind == "redirect")
                back = old.entry + pulled * old.direction
                points.append(back)
                points.extend(_arc(old.entry, old.direction, new.direction, pulled))
                times.extend([step.t] * (1 + _ARC_PIECES))
            points.append(new.tip if new is not None else old.entry)
            times.append(step.t)
        return [(_densified(np.array(points)), _densified_times(np.array(points), np.array(times)))
                for points, times in paths]

    def path_length_mm(self) -> float:
        """Total distance the tip travelled in the patient, mm (Perk Tutor's path length, §6.1 [S127])."""
        return float(sum(np.linalg.norm(np.diff(points, axis=0), axis=1).sum() for points, _ in self.tip_paths()))


def _arc(entry: np.ndarray, start: np.ndarray, end: np.ndarray, radius_mm: float) -> list[np.ndarray]:
    """Points of the arc (about ``entry``, at ``radius_mm``) from direction ``start`` to ``end``."""
    angle = float(np.arccos(np.clip(np.dot(start, end), -1.0, 1.0)))
    if angle < 1e-9:
        return [entry + radius_mm * end] * _ARC_PIECES
    sin = np.sin(angle)
    fractions = np.linspace(0.0, 1.0, _ARC_PIECES + 1)[1:]
    return [entry + radius_mm * (np.sin((1 - f) * angle) * start + np.sin(f * angle) * end) / sin for f in fractions]


def _subdivisions(points: np.ndarray) -> np.ndarray:
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.maximum(1, np.ceil(lengths / PATH_STEP_MM).astype(int))


def _densified(points: np.ndarray) -> np.ndarray:
    """``points`` with every segment cut into pieces no longer than :data:`PATH_STEP_MM`."""
    if len(points) < 2:
        return points
    pieces = [points[:1]]
    for a, b, n in zip(points[:-1], points[1:], _subdivisions(points)):
        pieces.append(a + np.linspace(0.0, 1.0, n + 1)[1:, None] * (b - a))
    return np.concatenate(pieces)


def _densified_times(points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The time of every point of :func:`_densified`: a segment's points take its end's time."""
    if len(points) < 2:
        return times
    return np.concatenate([times[:1]] + [np.full(n, t) for t, n in zip(times[1:], _subdivisions(points))])


def replay_attempt(scenario: Scenario, anatomy: Anatomy, log: Log, *, tracer: Tracer | None = None) -> Attempt:
    """The history of the attempt in ``log`` (:func:`simulator.session.replay.replay` folds it).

    Raises
    ------
    SpinesimError
        If an action is invalid at its point in the attempt (the message locates it).
    """
    return Attempt.of(replay(scenario, anatomy, log, tracer=tracer))
