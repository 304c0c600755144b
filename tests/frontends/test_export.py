"""``spinesim attempts export``: the programme's attempts as CSV with the columns the README documents, and as
xAPI 1.0.3 statements valid against the statement schema (tests/frontends/xapi_schema.py, from the
specification) that a learning record store receives by POST with basic authentication."""

from __future__ import annotations

import base64
import csv
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from frontends.cli import main
from frontends.store import RECORD_COLUMNS, Store
from frontends.web.attempt import LiveAttempt
from frontends.xapi import EXTENSIONS, VERBS, iso_duration, statements
from scenarios.schema import library_scenarios
from tests.frontends.xapi_schema import STATEMENT_SCHEMA, cross_field_errors

README = Path(__file__).resolve().parents[2] / "README.md"
HOMEPAGE = "https://spine.example-hospital.org"


@pytest.fixture(scope="module")
def programme(tmp_path_factory, small_spine):
    """ben: a graded attempt at tfesi-default, then a pass with a flag (its report copied), then one abandoned;
    cy: one in progress."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('export') / 'spinesim.db'}")
    ben, cy = store.add_user("ben", "trainee", "battery staple"), store.add_user("cy", "trainee", "battery staple")
    attempt = LiveAttempt.start(store, ben.id, library_scenarios()["tfesi-default"], small_spine)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    graded = store.attempt(attempt.attempt_id)
    flag = {"code": "intravascular_injection", "severity": "major", "title": "Intravascular injection",
            "message": "contrast in an artery"}
    passed = store.start_attempt(ben.id, "tfesi-default", graded.seed)
    store.finish_attempt(passed, graded.report | {"grade": 91.5, "passed": True, "flags": [flag]})
    abandoned = store.start_attempt(ben.id, "ilesi-default", 3)
    store.append_action(abandoned, 1, {"t": 12.5, "type": "fluoro_shot", "mode": "pulse"})
    store.abandon_attempt(abandoned)
    store.start_attempt(cy.id, "facet-default", 4)
    return store, graded.id, passed, abandoned


def _documented_columns() -> list[str]:
    """The CSV columns in the README's table under "The programme's records", in order."""
    section = README.read_text(encoding="utf-8").split("### The programme's records", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.MULTILINE)


def test_the_csv_export_has_the_readme_columns_marks_abandoned_attempts_and_filters_by_date(programme, tmp_path,
                                                                                          capsys):
    store, graded, passed, abandoned = programme
    output = tmp_path / "attempts.csv"
    assert main(["attempts", "export", "--format", "csv", "-o", str(output), "--db", store.url]) == 0
    assert "Wrote 4 attempts" in capsys.readouterr().out
    with output.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert reader.fieldnames == _documented_columns() == list(RECORD_COLUMNS)
    by_id = {int(row["attempt"]): row for row in rows}
    report = store.attempt(graded).report
    first = by_id[graded]
    assert first["status"] == "finished" and first["passed"] == "no" and first["procedure"] == "transforaminal_epidural"
    assert int(first["fluoro_shots"]) == report["metrics"]["fluoro_shots"] == 1
    assert float(first["dap_gy_cm2"]) == report["metrics"]["dose_area_product_gy_cm2"] > 0
    assert float(first["reference_air_kerma_mgy"]) == report["metrics"]["reference_air_kerma_mgy"] > 0
    assert float(first["fluoro_s"]) == report["metrics"]["fluoro_seconds"] > 0
    assert first["finished_utc"] >= first["started_utc"] and float(first["attempt_time_s"]) > 0
    assert by_id[passed]["flags"] == "intravascular_injection" and by_id[passed]["grade"] == "91.5"
    gone = by_id[abandoned]
    assert gone["status"] == "abandoned" and gone["grade"] == gone["passed"] == gone["dap_gy_cm2"] == ""
    assert gone["attempt_time_s"] == "12.5" and gone["finished_utc"] != ""
    assert [row["status"] for row in rows][-1] == "in_progress" and rows[-1]["attempt_time_s"] == ""

    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert main(["attempts", "export", "--format", "csv", "--since", tomorrow, "-o", str(output),
                 "--db", store.url]) == 0
    assert "Wrote 0 attempts" in capsys.readouterr().out and output.read_text().strip() == ",".join(RECORD_COLUMNS)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert main(["attempts", "export", "--format", "csv", "--since", today, "--trainee", "cy", "-o", str(output),
                 "--db", store.url]) == 0
    assert [row["trainee"] for row in csv.DictReader(output.read_text().splitlines())] == ["cy"]


def test_the_xapi_export_is_valid_against_the_statement_schema_and_says_what_each_attempt_did(programme, tmp_path,
                                                                                            capsys):
    store, graded, passed, abandoned = programme
    output = tmp_path / "attempts.json"
    assert main(["attempts", "export", "--format", "xapi", "--homepage", HOMEPAGE, "-o", str(output),
                 "--db", store.url]) == 0
    assert "Wrote 5 xAPI statements of 4 attempts" in capsys.readouterr().out
    found = json.loads(output.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(STATEMENT_SCHEMA)
    for statement in found:
        assert list(validator.iter_errors(statement)) == [] and cross_field_errors(statement) == []
    verbs = [s["verb"]["id"] for s in found]
    assert verbs == [VERBS["completed"], VERBS["failed"], VERBS["completed"], VERBS["passed"], VERBS["abandoned"]]
    assert len({s["id"] for s in found}) == 5 and len({s["context"]["registration"] for s in found}) == 3
    assert {s["actor"]["account"]["name"] for s in found} == {"ben"} and "mbox" not in found[0]["actor"]
    assert {s["actor"]["account"]["homePage"] for s in found} == {HOMEPAGE}
    case = library_scenarios()["tfesi-default"]
    assert found[1]["object"]["definition"]["name"] == {"en-US": case.title}
    assert found[1]["object"]["definition"]["description"] == {"en-US": case.brief}
    report = store.attempt(graded).report
    result = found[1]["result"]
    assert result["score"]["scaled"] == pytest.approx(report["grade"] / 100) and result["success"] is False
    assert result["duration"] == iso_duration(report["metrics"]["procedure_time_s"]) and result["completion"]
    assert result["extensions"][EXTENSIONS["dose-area-product-gy-cm2"]] == report["metrics"]["dose_area_product_gy_cm2"]
    assert result["extensions"][EXTENSIONS["reference-air-kerma-mgy"]] == report["metrics"]["reference_air_kerma_mgy"]
    assert result["extensions"][EXTENSIONS["fluoroscopy-time-s"]] == report["metrics"]["fluoro_seconds"]
    assert found[3]["result"]["extensions"][EXTENSIONS["flags"]] == ["intravascular_injection"]
    assert found[3]["result"]["score"] == {"scaled": 0.915, "raw": 91.5, "min": 0, "max": 100}
    assert found[4]["result"] == {"completion": False, "duration": "PT12.5S"}
    ended = store.attempt(abandoned).finished
    assert datetime.fromisoformat(found[4]["timestamp"]) == pytest.approx(ended, abs=timedelta(milliseconds=1))
    # Exported again: the same statements (ids included), so an LRS stores an attempt once.
    assert statements(store.attempts(), {}, HOMEPAGE)[0]["id"] == found[0]["id"]


@pytest.mark.parametrize("break_it", [
    lambda s: s["actor"]["account"].pop("homePage"),
    lambda s: s["actor"].update(mbox="mailto:ben@example.org"),  # two identifiers
    lambda s: s["result"].update(duration="42 s"),
    lambda s: s["result"]["extensions"].update(dap=1.0),  # an extension key that is not an IRI
    lambda s: s["result"]["score"].update(scaled=91.5),
    lambda s: s.update(timestamp="2026-12-06 07:00"),
    lambda s: s["context"].update(registration="attempt-1"),
    lambda s: s["object"]["definition"].update(name={"en US": "x"}),  # not an RFC 5646 tag
    lambda s: s.update(trainee="ben"),
])
def test_the_statement_schema_refuses_what_an_lrs_must_reject(programme, break_it):
    store, *_ = programme
    statement = statements(store.attempts(), {}, HOMEPAGE)[1]
    assert list(jsonschema.Draft202012Validator(STATEMENT_SCHEMA).iter_errors(statement)) == []
    break_it(statement)
    assert list(jsonschema.Draft202012Validator(STATEMENT_SCHEMA).iter_errors(statement)) != []


class _LearningRecordStore(BaseHTTPRequestHandler):
    """A stand-in LRS: keeps each POST (path, headers, body) and answers with the statement ids, or 401 for
    credentials other than the server's."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts.append((self.path, self.headers, body))  # headers looked up in any case
        expected = "Basic " + base64.b64encode(b"spinesim-key:s3cret").decode()
        status, reply = (200, [s["id"] for s in body]) if self.headers["Authorization"] == expected else (
            401, {"message": "bad credentials"})
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_the_xapi_export_is_posted_to_an_lrs_with_basic_auth_from_the_environment(programme, tmp_path, capsys,
                                                                                  monkeypatch):
    store, *_ = programme
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LearningRecordStore)
    server.posts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        lrs = f"http://127.0.0.1:{server.server_address[1]}/xapi/"
        output = tmp_path / "sent.json"
        command = ["attempts", "export", "--format", "xapi", "--homepage", HOMEPAGE, "--lrs", lrs, "-o", str(output),
                   "--db", store.url]
        monkeypatch.delenv("SPINESIM_LRS_AUTH", raising=False)
        assert main(command) == 1 and "SPINESIM_LRS_AUTH holds no LRS credentials" in capsys.readouterr().err
        monkeypatch.setenv("SPINESIM_LRS_AUTH", "spinesim-key:s3cret")
        assert main(command) == 0 and "Sent 5 statements" in capsys.readouterr().out
        path, headers, body = server.posts[-1]
        assert path == "/xapi/statements" and headers["X-Experience-API-Version"] == "1.0.3"
        assert headers["Content-Type"] == "application/json"
        assert body == json.loads(output.read_text(encoding="utf-8"))
        monkeypatch.setenv("SPINESIM_LRS_AUTH", "spinesim-key:wrong")
        assert main(command) == 1
        assert "refused the statements: HTTP 401" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
