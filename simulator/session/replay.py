"""The one replay: an action log folded into the :class:`~simulator.session.fold.Session` it describes.

Every caller that rebuilds an attempt goes through :func:`replay`: ``spinesim run`` and ``spinesim
score`` on a log file, the web app resuming an attempt from its stored actions, scoring and the
report, the patient pages and the warm-up that compiles the kernels. A log is folded with the same
seeded randomness and the actions' own timestamps, so every state, event and image comes back
exactly; an action that does not apply is located the same way for every caller (the log file's
line, or the action's number and type).
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Callable, Sequence

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from scenarios.schema import Scenario
from simulator.needle.trace import Tracer
from simulator.session.actions import LogContents, LogWriter, read_log
from simulator.session.fold import Session, Step, log_header, scenario_of_log

Log = str | PathLike | LogContents | Sequence[Any]


def replay(scenario: Scenario, anatomy: Anatomy, log: Log, *, tracer: Tracer | None = None, source: str | None = None,
           log_path: str | PathLike | None = None, resume: bool = False,
           on_step: Callable[[Session, Step], None] | None = None) -> Session:
    """The session ``log`` describes, folded action by action.

    Parameters
    ----------
    scenario, anatomy :
        The case and its patient. A log header naming another scenario is refused; a seed (and a
        patient seed) in it replaces the scenario's: ``anatomy`` must be that patient
        (``scenario_of_log(...).load_patient()``).
    log : path, LogContents or sequence
        A JSON Lines action log (its path or :func:`~simulator.session.actions.read_log`'s contents),
        or the actions themselves (models or their JSON records, as the web app's store keeps them).
    tracer : Tracer, optional
        Shared with other sessions on the same anatomy.
    source : str, optional
        What a sequence of actions is, for messages (``"attempt 12"``); a log file names itself.
    log_path : path, optional
        Write the replayed attempt's log (with its header) here as it is folded.
    resume : bool
        With a log file: further actions append to it (a last line cut by a crash removed first).
    on_step : callable, optional
        Called as ``on_step(session, step)`` after each action is folded (``spinesim run`` prints
        events and writes images as they happen).

    Returns
    -------
    Session
        ``truncated`` describes a last line cut short by a crash, if any.

    Raises
    ------
    SpinesimError
        If the log cannot be read, or an action is invalid at its point in the attempt: the message
        names the file and line, or the action's number and type.
    """
    contents = read_log(log) if isinstance(log, (str, PathLike)) else log
    if isinstance(contents, LogContents):
        path, lines = contents.path, True
        scenario = scenario_of_log(scenario, contents.header, path or source or "the action log")
        actions, header_lines, truncated = contents.actions, int(bool(contents.header)), contents.truncated
    else:
        path, lines, actions, header_lines, truncated = None, False, list(contents), 0, None
    if resume and path is None:
        raise ValueError("resume needs a log file")
    session = Session(scenario, anatomy, tracer=tracer, log_path=log_path)
    for number, action in enumerate(actions, start=1):
        try:
            session.apply(action)
        except SpinesimError as error:
            raise SpinesimError(error.problem, path=path, where=_located(number, action, header_lines, source, lines=lines),
                                hint=error.hint) from None
        if on_step is not None:
            on_step(session, session.steps[-1])
    session.truncated = truncated
    if resume:
        header = log_header(scenario)
        # A log cut inside its header line starts again.
        session.log_to(LogWriter(path, header) if contents.whole_bytes == 0 else LogWriter(path, keep_bytes=contents.whole_bytes))
    return session


def _located(number: int, action: Any, header_lines: int, source: str | None, *, lines: bool) -> str:
    """Where action ``number`` of a log is: its line in a log file, else its number and type."""
    if lines:
        return f"line {number + header_lines}"
    kind = action.get("type") if isinstance(action, dict) else getattr(action, "type", None)
    where = f"action {number}" + (f" ({kind})" if isinstance(kind, str) else "")
    return f"{source}, {where}" if source else where
