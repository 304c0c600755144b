"""A bounded fuzz of what a browser sends a workstation: every request (click or changed field) with
hypothesis-drawn values (wrong types, NaN, infinities, huge numbers, long strings, markup, wrong counts),
driven through :meth:`Handlers.request` as the page's messages are. Each is applied or refused with a
:class:`SpinesimError` message; nothing else escapes. The figures are printed (run with ``-s``)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_models.errors import SpinesimError
from frontends.store import Store
from frontends.web.handlers import REQUESTS, Handlers
from frontends.web.patients import Patients
from scenarios.schema import library_scenarios
from tests.frontends.web.conftest import ANATOMY
from tests.fuzzing import examples

MARKUP = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "{{ constructor.constructor('alert(1)')() }}",
          "[red]x[/]", "../../etc/passwd", "\x00\udcff", "ilesi-default", "tfesi-default", "AP", "lateral", "in"]
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0]),
    st.sampled_from(MARKUP), st.text(max_size=40), st.text(min_size=5000, max_size=20000),
    st.lists(st.floats(), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
# A valid request now and then, so that the hostile ones also meet an attempt with a needle and a probe.
SCENARIO = "ilesi-ultrasound-l4l5-left"
SETUP = [("shot", ()), ("pick", (256, 256, 512, 512)), ("insert", (0, 0, 0)), ("probe_view", ("PSO",))]
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
                    st.floats(-1000, 1000), st.sampled_from([0, 1, -1, 0.5, 512, 1e308, -1e308]))
# The requests drawn (finishing, or leaving, the attempt only once, at the end: they end what the rest acts on).
FUZZED = sorted(set(REQUESTS) - {"finish", "new_attempt"})
FIGURES: Counter = Counter()


@pytest.fixture(scope="module")
def handlers(patient, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    store = Store(f"sqlite:///{folder / 'spinesim.db'}")
    user = store.add_user("ada", "instructor", "correct horse")
    handlers = Handlers(store, user, library_scenarios(), Patients(ANATOMY), folder, show=lambda **_: None)
    _begin(handlers)
    yield handlers
    for name in ("finish", "new_attempt"):
        _send(handlers, name, ())
    print(f"\nweb fuzz: {FIGURES['tried']} messages tried, {FIGURES['applied']} applied, "
          f"{FIGURES['rejected']} rejected with a message, crashes: {FIGURES['crashed']}")


def _begin(handlers: Handlers) -> None:
    handlers.request("start_attempt", SCENARIO)
    for name, values in SETUP:
        handlers.request(name, *values)


def _send(handlers: Handlers, name: str, values: tuple) -> None:
    FIGURES["tried"] += 1
    try:
        handlers.request(name, *values)
    except SpinesimError as refused:
        assert str(refused) and len(str(refused)) < 2000  # a message, and not a flood
        FIGURES["rejected"] += 1
        return
    except BaseException:
        FIGURES["crashed"] += 1
        raise
    FIGURES["applied"] += 1


@st.composite
def _requests(draw) -> tuple[str, tuple]:
    """A request with hostile values of any count, or with numbers of the right count."""
    name = draw(st.sampled_from(FUZZED))
    if draw(st.booleans()):
        return name, tuple(draw(st.lists(HOSTILE, max_size=5)))
    return name, tuple(draw(st.lists(NUMBERS, min_size=REQUESTS[name], max_size=REQUESTS[name])))


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(requests=st.lists(_requests(), min_size=1, max_size=4))
def test_every_browser_request_is_applied_or_refused_with_a_message(handlers, requests):
    if handlers.attempt is None or handlers.attempt.finished:
        _begin(handlers)
    for name, values in requests:
        _send(handlers, name, values)
