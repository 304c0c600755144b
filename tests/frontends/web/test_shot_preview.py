"""Issue 18: a shot at a C-arm pose the monitor has not shown is previewed coarse (a ray per 4 x 4 pixels)
as soon as it is committed, then replaced by its full image; the dose counts the one exposure."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from frontends.store import Store
from frontends.web.attempt import PREVIEW_PIXELS
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from tests.frontends.web.conftest import ANATOMY


def _picture(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("L"), float)


class _Monitor:
    """The page's fluoroscopy monitor: every picture pushed to it, in order."""

    def __init__(self) -> None:
        self.pictures: list[np.ndarray] = []
        self.captions: list[str] = []

    def show(self, **changes) -> None:
        if changes.get("fluoro_src"):  # not the blank monitor of a new attempt
            self.pictures.append(_picture(changes["fluoro_src"]))
            self.captions.append(changes["fluoro_caption"])

    def clear(self) -> None:
        self.pictures.clear()
        self.captions.clear()

    def widths(self) -> list[int]:
        return [picture.shape[1] for picture in self.pictures]


@pytest.fixture()
def shooting(patient, tmp_path):
    """A started attempt, its monitor recorded, with a first shot taken."""
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    monitor = _Monitor()
    handlers = Handlers(store, store.add_user("ada", "trainee", "battery staple"), library_scenarios(),
                        Patients(ANATOMY), tmp_path, show=monitor.show)
    handlers.start_attempt("tfesi-default")
    handlers.shot()
    return handlers, monitor


def test_a_shot_at_a_new_pose_is_previewed_coarse_then_replaced_by_its_image(shooting):
    handlers, monitor = shooting
    attempt = handlers.attempt
    pixels = attempt.session.carm().detector_pixels
    handlers.move_carm(20.0, 0.0)
    monitor.clear()
    kerma_before, shots_before = attempt.ledger.reference_air_kerma_mgy, len(attempt.shots)
    handlers.shot()
    # The preview first, then the image (pushed again with the rest of the screen's view).
    widths = monitor.widths()
    assert widths[0] == PREVIEW_PIXELS < pixels and len(widths) > 1 and set(widths[1:]) == {pixels}, widths
    assert set(monitor.captions) == {attempt.last_shot.caption}
    # The preview is the same view: the full image averaged over 4 x 4 pixels matches it (JPEG, noise).
    preview, full = monitor.pictures[:2]
    binned = full.reshape(PREVIEW_PIXELS, pixels // PREVIEW_PIXELS, PREVIEW_PIXELS, -1).mean(axis=(1, 3))
    assert np.corrcoef(preview.ravel(), binned.ravel())[0, 1] > 0.9
    # One exposure: one shot on record and one pulse's dose, the same as the next pulse at this pose.
    new_pose_kerma = attempt.ledger.reference_air_kerma_mgy - kerma_before
    assert len(attempt.shots) == shots_before + 1
    assert [a.type for a in attempt.session.actions].count("fluoro_shot") == shots_before + 1
    monitor.clear()
    handlers.shot()  # the pose the monitor shows: nothing to preview
    assert set(monitor.widths()) == {pixels}
    assert new_pose_kerma == pytest.approx(attempt.ledger.reference_air_kerma_mgy - kerma_before - new_pose_kerma)


def test_the_attempt_keeps_the_cine_played_last_only(shooting, monkeypatch):
    """A run's cine (up to CINE_LOOP_FRAMES JPEGs) is kept while it is the one the monitor replays, not for
    every run of the attempt (a workstation's memory grew with each live or DSA run)."""
    import frontends.web.attempt as attempt_module

    handlers, _ = shooting
    attempt = handlers.attempt
    rendered = []
    render_run = attempt_module.render_run
    monkeypatch.setattr(attempt_module, "render_run", lambda *a, **k: rendered.append(1) or render_run(*a, **k))
    monkeypatch.setattr(handlers, "play_run", lambda: None)  # the runs are not played on a monitor here
    handlers.live(0.1)
    first = attempt.last_run
    handlers.live(0.1)
    second = attempt.last_run
    frames, _ = attempt.cine(first)
    assert attempt.cine(first)[0] is frames and len(rendered) == 1  # kept while it is the one replayed
    attempt.cine(second)
    attempt.cine(first)  # made again: the second run's cine took its place
    assert len(rendered) == 3
