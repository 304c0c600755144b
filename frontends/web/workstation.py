"""One user's workstation: the trame app a trainee (or instructor) works in, one process per login.

trame keeps ONE shared state per server process: every browser connected to a process sees and
changes the same state. So the portal (:mod:`frontends.web.portal`) starts a workstation process
for each logged-in user, bound to the loopback interface, and forwards only that user's requests
to it; users never share a process, and so never see each other's state.

The trainee's screen: a scenario picker (the library's cases, then those of each folder the server was
given with ``--scenarios``, :mod:`scenarios.catalogue`), the case's difficulty, objectives and patient
explanation (:mod:`frontends.web.explanation`) and, where the case offers one, the choice of needle from its
tray, the fluoroscopy monitor (black, last image held), the C-arm (angles, presets, the intensifier's
magnification field, the shutters, the table moved), the needle (entry picked on the image, two angles
or a drag on the image to re-aim, advance/withdraw by a step, redirect), the loss-of-resistance syringe and contrast, events, timer, shot and dose counters,
hints (each a ``show_hint`` action), where the scenario allows ultrasound a second monitor with live
B-mode and the probe's controls (standard views, slide/sweep/rotate/tilt/rock, depth, gain,
frequency, an in-plane needle aimed on the image), live fluoroscopy streamed while Live (or the space bar)
is held, then Finish (confirmed first) and the report with a
replay slider, or Abandon (kept as abandoned, not graded). Keyboard shortcuts press the controls (listed
under the monitor), and the monitor zooms.
An instructor also gets the Review tab: attempts by trainee and scenario, reports, replays, scenario
previews and learning curves.

This module is the process and its trame wiring; the page is drawn by :mod:`frontends.web.layout`
from the state :mod:`frontends.web.views` computes, and each click or changed field is handled by
:mod:`frontends.web.handlers` (the Review tab's by :mod:`frontends.web.review`). Every click becomes
an action of :class:`frontends.web.attempt.LiveAttempt`; a refused action shows its
:class:`SpinesimError` message and changes nothing. The image is sent (JPEG data URL, flushed on its
own) before the rest of the screen is updated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from aiohttp import WSCloseCode
from wslink.chunking import UnChunker

from anatomy_models.errors import SpinesimError
from frontends.casebook import department_catalogue, with_department_cases
from frontends.store import Store
from frontends.web.editor import EDITOR_REQUESTS, CaseEditor
from frontends.web.handlers import Handlers
from frontends.web.inputs import MAX_MESSAGE_BYTES
from frontends.web.kernels import UltrasoundKernels
from frontends.web.patients import Patients
from frontends.web.portal_link import SECRET_HEADER, die_with_parent, secrets_match
from frontends.web.views import initial_state
from scenarios.catalogue import Catalogue
from scenarios.schema import Scenario
from simulator.case.controls import carm_start, probe_level_and_side

# Work longer than this (s: a patient loaded, a report, a first ultrasound frame) leaves freed scratch
# memory that glibc keeps unless asked to hand it back (release_freed_memory, a few ms).
HEAVY_WORK_S = 0.3
# The case the screen opens on when the user has no assigned case to do and the server named none: the
# interlaminar epidural, the first procedure a trainee learns.
OPENING_SCENARIO = "ilesi-default"
# The clicks (controller methods of the page, named as frontends.web.layout calls them): each runs its
# handler in a worker thread. ``new_attempt`` only changes the state, at once.
_CLICKS = ("start_attempt", "resume_attempt", "shot", "live", "dsa", "move_carm", "preset", "pan", "magnify",
           "collimate", "pick", "align_beam", "nudge", "drag_aim", "abandon", "insert", "redirect", "advance",
           "withdraw", "lor", "inject", "read_contrast", "medicate", "stimulate", "lesion", "finish", "open_attempt",
           "preview", "hint", "probe_view", "probe_move", "probe_settings", "us_pick", "insert_in_plane",
           "explain_case", "explain_attempt", "play_run", "comment")


class StoppedServing(RuntimeError):
    """A worker asked to show something after the workstation had stopped serving (:meth:`Workstation._set`)."""


@dataclass(frozen=True)
class WorkstationConfig:
    """What the portal tells a workstation process (JSON in the ``SPINESIM_WORKSTATION`` variable).

    A spare starts with ``user_id`` and ``port`` None, warms up, writes ``warm`` to the file
    descriptor ``warm_fd`` and reads them (a JSON line) from its standard input.
    """

    db_url: str
    secret: str  # every request must carry it in the portal's SECRET_HEADER
    user_id: int | None = None
    port: int | None = None
    anatomy: str | None = None  # overrides every scenario's anatomy (tests, a department's own patient)
    scenario: str | None = None  # the scenario picked when the screen opens
    scenario_folders: list[str] = field(default_factory=list)  # served besides the library (--scenarios)
    warm_fd: int | None = None
    reports_dir: str | None = None  # where its reports go (the portal's folder, removed with the portal)

    @classmethod
    def from_environment(cls) -> WorkstationConfig:
        return cls(**json.loads(os.environ["SPINESIM_WORKSTATION"]))

    def assigned(self, line: str) -> WorkstationConfig:
        """This configuration with the user and port of an assignment line from the portal.

        Raises
        ------
        SpinesimError
            If the line is not ``{"user_id": int, "port": int}`` (the portal went away: an empty line).
        """
        try:
            assignment = json.loads(line)
            user_id, port = int(assignment["user_id"]), int(assignment["port"])
        except (ValueError, KeyError, TypeError):
            raise SpinesimError(f"a spare workstation expected its assignment, got {line[:80]!r}") from None
        return replace(self, user_id=user_id, port=port, warm_fd=None)


class Workstation:
    """The trame server of one user (see the module docstring): wires the page's clicks and fields to
    :class:`frontends.web.handlers.Handlers`, and pushes what they change to the browser."""

    def __init__(self, config: WorkstationConfig, server=None, *, catalogue: Catalogue | None = None,
                 patients: Patients | None = None) -> None:
        from trame.app import get_server

        self.config = config
        self.store = Store(config.db_url)
        self.user = self.store.user_by_id(config.user_id)
        # Read again now: a spare warmed up before an instructor saved the department's newest case.
        self.catalogue = with_department_cases(catalogue or department_catalogue(self.store, config.scenario_folders),
                                               self.store)
        self.scenarios = self.catalogue.scenarios
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._serving_ended: concurrent.futures.Future = concurrent.futures.Future()  # set by serve() as it returns
        self.lock = asyncio.Lock()
        self.server = server or get_server(client_type="vue3")
        # HTML reports this workstation made, served to its own user only (through the portal).
        reports = Path(tempfile.mkdtemp(prefix="spinesim-reports-", dir=config.reports_dir))
        self.server.serve["reports"] = str(reports)
        self.handlers = Handlers(self.store, self.user, self.scenarios, patients or Patients(config.anatomy), reports,
                                 show=self._set, later=self._later, kernels=UltrasoundKernels(config.reports_dir))
        self.editor = CaseEditor(self.store, self.user, self.catalogue, self.handlers.patients, show=self._set)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.ctrl.on_server_bind.add(lambda wslink_server: guard(wslink_server, config.secret))
        self._init_state()
        self._bind()
        self._layout()

    def _init_state(self) -> None:
        assigned = self.store.assignments_for(self.user.id) if self.user.role == "trainee" else []
        to_do = [a.scenario_id for a in assigned if not a.done]
        first = first_scenario(self.scenarios, self.config.scenario, to_do)
        handlers = self.handlers
        self.state.update(initial_state(self.user, self.catalogue, first, assigned) | handlers.scenario_view(first)
                          | handlers.resume_view() | handlers.review_view() | handlers.programme_view()
                          | self.editor.view())

    def _bind(self) -> None:
        c, handlers = self.ctrl, self.handlers
        for name in _CLICKS:
            setattr(c, name, self._click(name))
        # Live held and let go run beside a click in progress: a release must never be dropped or wait.
        c.live_hold = lambda *values: self._beside(self.handlers.request, "live_hold", *values)
        c.new_attempt = lambda *values: self._shown(lambda: handlers.request("new_attempt", *values) or {})
        for name in EDITOR_REQUESTS:  # the instructor's case editor (Cases tab)
            setattr(c, name, (lambda request: lambda *values: self._run(self.editor.request, request, *values))(name))
        # These run on the event loop while the state is being flushed: they only update the state; a
        # value the browser sent that makes no sense is shown as a message, like a refused action.
        self._on_change("scenario_id", lambda scenario_id, **_: handlers.scenario_view(scenario_id))
        self._on_change("needle_number", lambda needle_number, **_: handlers.choose_needle(needle_number))
        self._on_change("replay_step", lambda replay_step, **_: handlers.replay_view(replay_step))
        # New attempts and comments may have been made since: the review, and a trainee's own attempts, are read
        # again whenever their tab opens.
        self._on_change("tab", lambda tab, **_: handlers.review_view(self.state.review_trainee,
                                                                     self.state.review_scenario)
                        | handlers.programme_view(self.state.review_cohort, self.state.review_scenario)
                        if tab == "review" else handlers.my_attempts_view() if tab == "mine" else {})
        # The programme view follows the cohort chosen and the same scenario filter as the attempts.
        self._on_change("review_cohort", "review_scenario",
                        lambda review_cohort, review_scenario, **_: handlers.programme_view(review_cohort,
                                                                                            review_scenario))
        self._on_change("review_trainee", "review_scenario",
                        lambda review_trainee, review_scenario, **_: handlers.review_view(review_trainee, review_scenario))
        c.on_server_ready.add(lambda **_: asyncio.ensure_future(self._tick()))

    def serve(self, port: int) -> None:
        """Serve the page on the loopback ``port`` until stopped (SIGTERM or SIGINT end trame's event loop); then
        its workers no longer wait for the loop to show what they made (:meth:`_set`)."""
        try:
            self.server.start(port=port, host="127.0.0.1", open_browser=False, show_connection_info=False, timeout=0,
                              disable_logging=True)
        finally:
            self._serving_ended.set_result(None)

    def _click(self, name: str):
        """The controller method for the click ``name``: its handler with the values the click carries
        (checked by :meth:`Handlers.request`), in a worker."""
        return lambda *values: self._run(self.handlers.request, name, *values)

    def _shown(self, view) -> None:
        """Update the state with ``view()``; a refused request shows its message instead."""
        try:
            self.state.update(view())
        except SpinesimError as error:
            self.state.update({"error_text": str(error), "error_show": True})

    def _on_change(self, *names_and_view) -> None:
        """Update the state with ``view(**changed)`` when any of ``names`` changes."""
        *names, view = names_and_view

        self.state.change(*names)(lambda **values: self._shown(lambda: view(**values)))

    def _set(self, **changes) -> None:
        """Change the shared state and push it to the browser now, from the event loop or a worker."""
        if threading.get_ident() == self._loop_thread:
            with self.state:
                self.state.update(changes)
        else:
            # A worker waits until the event loop has pushed the change, or until the workstation has stopped
            # serving: SIGTERM (its user logged out, the portal stopping) ends the loop, a change asked for then is
            # never made, and a worker waiting for it for good kept the stopping process alive, as Python
            # waits for the workers' threads at exit (seen with a report still being written after Finish and with
            # a live run's frames). The worker's work ends there: nobody is there to see it, and what it did is
            # in the store already (an action is stored before it is shown).
            pushed = asyncio.run_coroutine_threadsafe(self._set_async(changes), self._loop)
            concurrent.futures.wait([pushed, self._serving_ended], return_when=concurrent.futures.FIRST_COMPLETED)
            if not pushed.done():
                pushed.cancel()
                raise StoppedServing("the workstation has stopped serving: no page shows this change")
            pushed.result()

    async def _set_async(self, changes: dict) -> None:
        self._set(**changes)

    async def _run(self, work, *args) -> None:
        """Run ``work`` (blocking) in a worker thread, one at a time; errors become a message on screen."""
        if self.lock.locked():
            return
        async with self.lock:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
            self._set(busy=True)
            started = time.monotonic()
            try:
                await self._loop.run_in_executor(None, work, *args)
            except Exception as error:  # noqa: BLE001 - shown to the trainee (_show_error)
                self._show_error(error)
            finally:
                self._set(busy=False)
                if time.monotonic() - started > HEAVY_WORK_S:
                    release_freed_memory()

    async def _beside(self, work, *args) -> None:
        """Run ``work`` (blocking) in a worker thread now, beside a click in progress; errors become a
        message on screen."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        try:
            await self._loop.run_in_executor(None, work, *args)
        except Exception as error:  # noqa: BLE001 - shown to the trainee (_show_error)
            self._show_error(error)

    def _later(self, work) -> None:
        """Run ``work`` (blocking) in a worker thread once the request that asked for it is answered (called
        from a click's worker): the page's next requests do not wait for it; its errors show as messages."""
        asyncio.run_coroutine_threadsafe(self._background(work), self._loop)

    async def _background(self, work) -> None:
        try:
            await self._loop.run_in_executor(None, work)
        except Exception as error:  # noqa: BLE001 - shown to the trainee (_show_error)
            self._show_error(error)
        finally:
            release_freed_memory()

    def _show_error(self, error: Exception) -> None:
        """A refused action's message on screen; for any other error a message, the traceback in the log."""
        if isinstance(error, SpinesimError):
            self._set(error_text=str(error), error_show=True)
        else:
            # Imported when first needed: the command line's module (click, rich: 87 modules, 4 MB of every
            # workstation's private memory, python -m benchmarks memory) is otherwise not used here.
            from frontends.cli import log_internal_error

            log = log_internal_error(f"workstation of user {self.user.name}")
            self._set(error_text=f"internal error ({type(error).__name__}); details in {log}", error_show=True)

    async def _tick(self) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        while True:
            await asyncio.sleep(1.0)
            attempt = self.handlers.attempt
            if attempt is not None and not attempt.finished:
                seconds = int(attempt.now())
                self._set(timer_text=f"{seconds // 60:02d}:{seconds % 60:02d}")

    def _layout(self) -> None:
        from frontends.web.layout import build_layout

        build_layout(self.server, instructor=self.user.role == "instructor")


def first_scenario(scenarios: dict[str, Scenario], wanted: str | None, to_do: Sequence[str] = ()) -> str:
    """The case selected when the screen opens: the trainee's next assigned case still to do (``to_do``, soonest
    due first) that the server offers, else ``wanted`` (``serve --scenario``) if it is one, else
    :data:`OPENING_SCENARIO`, else the first by id. A trainee who logs in at any workstation finds the work their
    instructor set first; the server's choice is for everyone else.

    Examples
    --------
    >>> offered = dict.fromkeys(["ilesi-default", "mbb-default", "tfesi-l3l4-right"])
    >>> first_scenario(offered, "mbb-default", ["retired-case", "tfesi-l3l4-right"])
    'tfesi-l3l4-right'
    >>> first_scenario(offered, "mbb-default"), first_scenario(offered, None), first_scenario({"a": 0, "b": 0}, None)
    ('mbb-default', 'ilesi-default', 'a')
    """
    assigned = [case for case in to_do if case in scenarios]
    if assigned:
        return assigned[0]
    return next(case for case in (wanted, OPENING_SCENARIO, sorted(scenarios)[0]) if case in scenarios)


def warm_up(scenario: Scenario, patients: Patients, *, fluoroscopy: bool = True) -> None:
    """Load the scenario's patient and compile the imaging kernels (fluoroscopy with DSA unless ``fluoroscopy`` is
    False, and ultrasound with its acoustic maps if the scenario allows it) before the first click."""
    from simulator.case.planner import plan_trajectory
    from simulator.case.targets import target_for
    from simulator.imaging.probe import standard_view
    from simulator.session.replay import replay
    from simulator.session.scans import render_scan
    from simulator.session.shots import render_shot

    anatomy, tracer = patients.of(scenario)
    imaging = scenario.imaging.model_copy(update={"dsa": True})
    warming = scenario.model_copy(update={"imaging": imaging})
    target = target_for(warming, anatomy, tracer)
    path = plan_trajectory(tracer, target, warming.needle.spec())
    actions = [
        {"type": "place_needle", "t": 1.0, "entry": path.entry.tolist(), "direction": path.direction.tolist(),
         "depth_mm": path.depth_mm},
        {"type": "inject_contrast", "t": 2.0, "ml": 0.1},
        {"type": "fluoro_shot", "t": 3.0, "mode": "dsa", "seconds": 1.0},
        # The first shot of an attempt: its pose's DRR is then cached.
        {"type": "set_carm", "t": 4.0, **carm_start(scenario, anatomy).to_json()},
        {"type": "fluoro_shot", "t": 5.0},
    ]
    if scenario.imaging.ultrasound:
        probe = standard_view(anatomy, "paramedian-sagittal-oblique", *probe_level_and_side(scenario))
        actions.append({"type": "place_probe", "t": 6.0, **probe.pose().to_json()})
    session = replay(warming, anatomy, actions, tracer=tracer, source="the warm-up")
    for step in session.steps if fluoroscopy else ():
        if step.action.type == "fluoro_shot":
            render_shot(session, step.after, step.action.mode, step.action.seconds)
    if scenario.imaging.ultrasound:
        render_scan(session, session.state)


def release_freed_memory() -> None:
    """Hand memory the process freed back to the system (glibc keeps freed heap pages otherwise:
    ~70 MB after loading a patient and compiling the kernels). No-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def guard(wslink_server, secret: str) -> None:
    """Guard the workstation's web server (a wslink ``WebAppServer``) as it is bound: every request
    must carry the secret (:func:`require_secret`), and what a browser sends over the WebSocket is
    held to :data:`MAX_MESSAGE_BYTES` (:class:`BoundedUnChunker`; the portal checks it first)."""
    wslink_server.app.middlewares.append(require_secret(secret))
    for handler in wslink_server._ws_handlers:  # wslink keeps them private; there is no setting for this
        _bound_messages(handler)


def _bound_messages(handler) -> None:
    """Give each of the wslink ``handler``'s connections a :class:`BoundedUnChunker`, and close (1009) a
    connection whose chunk goes over the limit, with a line in the log instead of a traceback."""
    connect, receive = handler.onConnect, handler.onMessage

    async def bounded_connect(request, client_id) -> None:
        await connect(request, client_id)
        handler.unchunkers[client_id] = BoundedUnChunker()

    async def bounded_receive(is_binary, message, client_id) -> None:
        try:
            await receive(is_binary, message, client_id)
        except MessageTooBig as refused:
            print(f"closed a WebSocket: {refused}", flush=True)
            await handler.connections[client_id].close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"message too big")

    handler.onConnect, handler.onMessage = bounded_connect, bounded_receive


class MessageTooBig(ValueError):
    """A browser's WebSocket chunk declares more than the workstation holds (:data:`MAX_MESSAGE_BYTES`)."""


class BoundedUnChunker(UnChunker):
    """wslink's un-chunker held to :data:`MAX_MESSAGE_BYTES`: once the browser has said hello, wslink's
    own allocates whatever size a chunk header declares, up to 4 GB (four headers of 52 bytes in all
    grew a workstation by 1 GB). Here one message, and all unfinished ones together, stay within the
    limit; a chunk beyond it raises :class:`MessageTooBig`, which ends that WebSocket.

    Examples
    --------
    >>> header = lambda id, offset, size: b"".join(n.to_bytes(4, "little") for n in (id, offset, size))
    >>> unchunker = BoundedUnChunker()
    >>> unchunker.set_max_message_size(4 * 1024**3)  # what wslink asks for after the hello
    >>> unchunker.process_chunk(header(7, 0, 256 * 1024**2))
    Traceback (most recent call last):
    ...
    frontends.web.workstation.MessageTooBig: a chunk header declares a message of 268435456 bytes; with those unfinished, over the limit of 1048576
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_max_message_size(MAX_MESSAGE_BYTES)

    def set_max_message_size(self, size: int) -> None:
        super().set_max_message_size(min(size, MAX_MESSAGE_BYTES))

    def process_chunk(self, chunk: bytes):
        message_id = int.from_bytes(chunk[0:4], "little")
        size = int.from_bytes(chunk[8:12], "little")
        if message_id not in self.pending_messages:
            unfinished = sum(len(pending["content"]) for pending in self.pending_messages.values())
            if unfinished + size > self.max_message_size:
                raise MessageTooBig(f"a chunk header declares a message of {size} bytes; with those unfinished, over "
                                 f"the limit of {self.max_message_size}")
        return super().process_chunk(chunk)


def require_secret(secret: str):
    """aiohttp middleware refusing (403) every request, WebSocket upgrades included, that lacks the
    workstation's secret (the portal adds it; another local user reaching the port cannot)."""
    from aiohttp import web

    @web.middleware
    async def guard(request, handler):
        if not secrets_match(request.headers.get(SECRET_HEADER), secret):
            print(f"refused {request.method} {request.path} from {request.remote}: no workstation secret", flush=True)
            raise web.HTTPForbidden(text="this workstation only answers its portal")
        return await handler(request)

    return guard


def main() -> None:
    """Entry point of a workstation process (forked by the portal's zygote, :mod:`frontends.web.zygote`): warm
    up, then (a spare) wait for the portal to name the user and port, then serve."""
    die_with_parent()
    config = WorkstationConfig.from_environment()
    sys.argv = sys.argv[:1]  # trame parses the command line; the configuration came in the environment
    started = time.monotonic()
    try:
        catalogue = department_catalogue(Store(config.db_url), config.scenario_folders)
        patients = Patients(config.anatomy)
        for warning in catalogue.warnings:
            print(f"warning: {warning} (left out)", flush=True)
        opening = catalogue.scenarios[first_scenario(catalogue.scenarios, config.scenario)]
        if opening.imaging.ultrasound:  # its warm-up renders an ultrasound frame: load the server's compile
            UltrasoundKernels(config.reports_dir).wait(lambda text: print(text, flush=True))
        warm_up(opening, patients)
    except SpinesimError as error:  # the patient cannot be worked on: say why in the log, no traceback
        print(f"workstation cannot start: {error}", flush=True)
        sys.exit(2)
    release_freed_memory()
    print(f"workstation warm in {time.monotonic() - started:.1f} s", flush=True)
    for scenario in catalogue.scenarios.values():  # every case's first patient, cached while the portal waits
        patients.prepare(scenario)
    if config.user_id is None:
        os.write(config.warm_fd, b"warm\n")
        os.close(config.warm_fd)
        config = config.assigned(sys.stdin.readline())
        started = time.monotonic()
    station = Workstation(config, catalogue=catalogue, patients=patients)
    print(f"workstation for user {config.user_id} serving on port {config.port} after "
          f"{time.monotonic() - started:.1f} s more", flush=True)
    station.serve(config.port)


if __name__ == "__main__":
    main()
