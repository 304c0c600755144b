"""The patients of one workstation: each scenario's anatomy and its tracer, loaded once and shared by
every attempt the workstation runs (a process keeps them for hours). An imported CT with vertebra
labels but no landmarks gets landmarks estimated from its labels
(:func:`anatomy_models.label_landmarks.with_label_landmarks`), as the patient pages do."""

from __future__ import annotations

import numpy as np

from anatomy_models.anatomy import Anatomy
from anatomy_models.label_landmarks import with_label_landmarks
from anatomy_models.store import load_anatomy
from scenarios.schema import Scenario
from simulator.needle.trace import Tracer, tracer_for


class Patients:
    """Anatomies and their tracers, loaded once per source and shared by every attempt."""

    def __init__(self, override: str | None) -> None:
        self.override = override
        self._loaded: dict[str, tuple[Anatomy, Tracer]] = {}

    def of(self, scenario: Scenario) -> tuple[Anatomy, Tracer]:
        key = self.override or scenario.anatomy.model_dump_json()
        if key not in self._loaded:
            anatomy = load_anatomy(self.override) if self.override else scenario.anatomy.load()
            anatomy = compact_labels(with_label_landmarks(anatomy))
            self._loaded[key] = (anatomy, tracer_for(anatomy))
        return self._loaded[key]


def compact_labels(anatomy: Anatomy) -> Anatomy:
    """``anatomy`` with its label map held in one byte per voxel where every id fits (the built-in
    spine has under 200 structures): a workstation keeps its patients for hours, and this halves the
    label map's memory. The ids, and so every structure, are unchanged."""
    labels = anatomy.labels
    fits = max((label.id for label in anatomy.label_table), default=0) < 256
    if labels is not None and labels.array.dtype.itemsize > 1 and fits:
        anatomy.labels = labels.with_array(labels.array.astype(np.uint8))
    return anatomy
