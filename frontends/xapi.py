"""A programme's attempts as xAPI statements (Experience API 1.0.3), for a learning record store (LRS).

Each attempt an instructor exports becomes statements about its trainee, as xAPI defines them (ADL,
"xAPI Specification 1.0.3", Part Two: Data, §2.4 Statement Properties, github.com/adlnet/xAPI-Spec,
Apache-2.0):

- **actor**: the trainee as an *account* on the department's server (``homePage`` the server's address,
  ``name`` the spinesim user name). No e-mail and no real name beyond the stored user name (§2.4.2.4).
- **verb**: an attempt finished gets two statements, *completed* then *passed* or *failed*, as cmi5
  reports an assignable unit's end (cmi5 spec §9.3, aicc/CMI-5_Spec_Current); an attempt the trainee
  abandoned gets one, *abandoned* (the ADL verb cmi5 uses for a session that ended without its
  completion). Verb ids from the ADL vocabulary (``http://adlnet.gov/expapi/verbs/...`` and
  ``https://w3id.org/xapi/adl/verbs/abandoned``). An attempt still in progress has no statement yet.
- **object**: the case, an Activity of type *simulation* (ADL activity type) with its title as name and
  its brief as description, identified under :data:`SPINESIM_IRI` by the scenario id.
- **result**: the grade as the scaled score (grade / 100, §2.4.5.1.1), success (passed), completion, the
  attempt's duration (ISO 8601, 0.01 s precision, §4.6), and extensions for the dose (dose-area product in
  Gy cm², reference air kerma in mGy, IEC 60601-2-43's two displayed quantities), fluoroscopy time and
  shots, and the safety flags' codes.
- **context**: ``registration`` one UUID per attempt (all of an attempt's statements share it), the
  procedure as a category activity, the platform, the language; **timestamp** when the attempt ended.

Statement ids are UUIDs derived from the server, the attempt and the verb (uuid5), so an export sent
twice is the same statements twice: an LRS keeps one copy (§2.4.1, a statement id is its identity).

Pure functions over stored attempts, except :func:`send_statements` (the one network edge).
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
import uuid
from datetime import timezone

from anatomy_models.errors import SpinesimError
from frontends.store import Attempt

XAPI_VERSION = "1.0.3"
# The base of every IRI spinesim coins: its activities (cases, procedures) and its result extensions.
SPINESIM_IRI = "https://spinesim.org/xapi"
EXTENSION_IRI = f"{SPINESIM_IRI}/extensions"
VERBS: dict[str, str] = {"completed": "http://adlnet.gov/expapi/verbs/completed",
                         "passed": "http://adlnet.gov/expapi/verbs/passed",
                         "failed": "http://adlnet.gov/expapi/verbs/failed",
                         "abandoned": "https://w3id.org/xapi/adl/verbs/abandoned"}
SIMULATION_ACTIVITY = "http://adlnet.gov/expapi/activities/simulation"
# The result extensions, by their keys in the export (one IRI each under EXTENSION_IRI).
EXTENSIONS: dict[str, str] = {key: f"{EXTENSION_IRI}/{key}" for key in (
    "dose-area-product-gy-cm2", "reference-air-kerma-mgy", "fluoroscopy-time-s", "fluoroscopy-shots", "flags")}
_LANGUAGE = "en-US"
# An LRS may refuse large batches (ADL's reference LRS: 10 MB a request); a few hundred attempts a POST is
# far below that and keeps one failure small.
STATEMENTS_PER_POST = 200


def default_homepage() -> str:
    """The trainees' accounts' home page when the admin names none: ``http://`` and this machine's host name
    (the department server's, where the export runs; not its DNS name, whose lookup can stall the page)."""
    return f"http://{socket.gethostname()}"


def iso_duration(seconds: float) -> str:
    """``seconds`` as an ISO 8601 duration, to the 0.01 s precision xAPI keeps (Data §4.6).

    Examples
    --------
    >>> iso_duration(42.313), iso_duration(3725.0), iso_duration(0.0)
    ('PT42.31S', 'PT1H2M5S', 'PT0S')
    """
    centiseconds = int(round(max(seconds, 0.0) * 100))
    hours, rest = divmod(centiseconds, 360_000)
    minutes, rest = divmod(rest, 6_000)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if rest or text == "PT":
        text += f"{rest / 100:.2f}".rstrip("0").rstrip(".") + "S"
    return text


def attempt_statements(attempt: Attempt, cases: dict[str, tuple[str, str]], homepage: str) -> list[dict]:
    """The xAPI statements of one stored attempt (none while it is in progress).

    Parameters
    ----------
    attempt : frontends.store.Attempt
        The attempt, with its report if finished.
    cases : dict
        Scenario id -> (title, brief) to name the case; a case missing here is named by the title its
        report recorded, else by its id.
    homepage : str
        The department server's address: the trainee's account's ``homePage`` (an IRL).

    Returns
    -------
    list of dict
        ``completed`` then ``passed`` or ``failed`` for a finished attempt, ``abandoned`` for an abandoned
        one, in the order they happened.
    """
    if attempt.status not in ("finished", "abandoned"):
        return []
    report = attempt.report or {}
    title, brief = cases.get(attempt.scenario_id, (report.get("scenario_title") or attempt.scenario_id, ""))
    registration = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{homepage}/attempts/{attempt.id}"))
    definition = {"name": {_LANGUAGE: title}, "type": SIMULATION_ACTIVITY} | (
        {"description": {_LANGUAGE: brief}} if brief else {})
    context = {"registration": registration, "platform": "spinesim", "language": _LANGUAGE,
               "extensions": {f"{EXTENSION_IRI}/attempt": attempt.id, f"{EXTENSION_IRI}/seed": attempt.seed}}
    if report.get("procedure"):
        context["contextActivities"] = {"category": [
            {"objectType": "Activity", "id": f"{SPINESIM_IRI}/procedures/{report['procedure']}"}]}
    ended = (attempt.finished or attempt.started).astimezone(timezone.utc).isoformat(timespec="milliseconds")
    base = {"actor": {"objectType": "Agent", "name": attempt.user_name,
                      "account": {"homePage": homepage, "name": attempt.user_name}},
            "object": {"objectType": "Activity", "id": f"{SPINESIM_IRI}/cases/{attempt.scenario_id}",
                       "definition": definition},
            "context": context, "timestamp": ended.replace("+00:00", "Z"), "version": XAPI_VERSION}
    if attempt.status == "abandoned":
        result = {"completion": False, "duration": iso_duration(attempt.elapsed_s)}
        return [_statement(base, "abandoned", result, registration)]
    metrics = report["metrics"]
    duration = iso_duration(metrics["procedure_time_s"])
    completed = {"completion": True, "duration": duration}
    graded = {"score": {"scaled": round(min(max(report["grade"] / 100.0, 0.0), 1.0), 4),
                        "raw": round(report["grade"], 2), "min": 0, "max": 100},
              "success": bool(report["passed"]), "completion": True, "duration": duration,
              "extensions": {EXTENSIONS["dose-area-product-gy-cm2"]: metrics["dose_area_product_gy_cm2"],
                             EXTENSIONS["reference-air-kerma-mgy"]: metrics["reference_air_kerma_mgy"],
                             EXTENSIONS["fluoroscopy-time-s"]: metrics["fluoro_seconds"],
                             EXTENSIONS["fluoroscopy-shots"]: metrics["fluoro_shots"],
                             EXTENSIONS["flags"]: [flag["code"] for flag in report.get("flags", [])]}}
    return [_statement(base, "completed", completed, registration),
            _statement(base, "passed" if report["passed"] else "failed", graded, registration)]


def _statement(base: dict, verb: str, result: dict, registration: str) -> dict:
    statement_id = str(uuid.uuid5(uuid.UUID(registration), verb))
    return {"id": statement_id, **base, "verb": {"id": VERBS[verb], "display": {_LANGUAGE: verb}}, "result": result}


def statements(attempts: list[Attempt], cases: dict[str, tuple[str, str]], homepage: str) -> list[dict]:
    """Every attempt's statements (:func:`attempt_statements`), oldest attempt first.

    Examples
    --------
    >>> statements([], {}, "https://spinesim.example.org")
    []
    """
    return [statement for attempt in attempts for statement in attempt_statements(attempt, cases, homepage)]


def statements_json(found: list[dict]) -> str:
    """The statements as the JSON array an LRS's statements resource takes in one POST (Comms §2.1.2)."""
    return json.dumps(found, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def send_statements(found: list[dict], lrs_url: str, credentials: str | None, timeout_s: float = 30.0) -> int:
    """POST the statements to the LRS at ``lrs_url`` (its xAPI endpoint; ``/statements`` is added), in
    batches of :data:`STATEMENTS_PER_POST`, with HTTP basic authentication from ``credentials``
    (``key:secret``, as an LRS issues them; None for none). Returns how many were sent.

    Raises
    ------
    SpinesimError
        If the LRS cannot be reached or refuses a batch (its status and its message), naming how many
        statements it had accepted before.
    """
    if not lrs_url.startswith(("http://", "https://")):
        raise SpinesimError(f"--lrs {lrs_url!r} is not an http(s) URL", hint="give the LRS's xAPI endpoint, "
                            "e.g. https://lrs.example.org/xapi")
    headers = {"Content-Type": "application/json", "X-Experience-API-Version": XAPI_VERSION}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    target = lrs_url.rstrip("/") + "/statements"
    sent = 0
    for start in range(0, len(found), STATEMENTS_PER_POST):
        batch = found[start:start + STATEMENTS_PER_POST]
        request = urllib.request.Request(target, data=json.dumps(batch, allow_nan=False).encode("utf-8"),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                reply.read()
        except urllib.error.HTTPError as error:
            detail = error.read(500).decode("utf-8", "replace").strip()
            raise SpinesimError(f"the LRS {target} refused the statements: HTTP {error.code} {detail}",
                                hint=f"{sent} of {len(found)} statements were accepted before; check the LRS "
                                     "credentials and its log") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SpinesimError(f"cannot reach the LRS {target}: {reason}",
                                hint=f"{sent} of {len(found)} statements were sent; check the --lrs URL") from None
        sent += len(batch)
    return sent
