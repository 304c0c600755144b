"""The attempt store: passwords, roles, actions durable before the screen shows them, resume after a
crash, and the login rule beyond localhost."""

from __future__ import annotations

import json

import pytest

from anatomy_models.errors import SpinesimError
from frontends.cli import main
from frontends.store import RECORD_COLUMNS, Store, hash_password, records_csv, verify_password
from frontends.web.attempt import LiveAttempt
from frontends.web.portal import Portal, PortalConfig
from scenarios.schema import load_scenario
from simulator.session.actions import read_log


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")


def test_passwords_are_salted_scrypt_hashes_verified_in_constant_time():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", None) and not verify_password("x", "md5$abc")
    assert not verify_password("x", "scrypt$not$a$valid$hash$at-all")


def test_users_have_roles_and_only_their_password_logs_them_in(store):
    store.add_user("ada", "instructor", "correct horse")
    store.add_user("ben", "trainee", "battery staple")
    assert [(u.name, u.role, u.has_password) for u in store.users()] == [("ada", "instructor", True),
                                                                         ("ben", "trainee", True)]
    assert store.authenticate("ben", "battery staple").role == "trainee"
    assert store.authenticate("ben", "correct horse") is None
    assert store.authenticate("nobody", "battery staple") is None
    store.set_password("ben", "a new password")
    assert store.authenticate("ben", "battery staple") is None and store.authenticate("ben", "a new password")
    local = store.local_trainee()
    assert local.role == "trainee" and not local.has_password and store.authenticate(local.name, "") is None
    assert store.local_trainee().id == local.id
    assert [u.name for u in store.login_users()] == ["ada", "ben"]


@pytest.mark.parametrize("call, message", [
    (lambda s: s.add_user("ada", "instructor", "correct horse"), "a user called 'ada' already exists"),
    (lambda s: s.add_user("eve", "admin", "correct horse"), "unknown role 'admin'"),
    (lambda s: s.add_user("bad name!", "trainee", "correct horse"), "invalid user name"),
    (lambda s: s.add_user("eve", "trainee", "short"), "the password is too short"),
    (lambda s: s.set_password("nobody", "long enough"), "no user called 'nobody'"),
    (lambda s: s.append_action(999, 1, {"type": "finish", "t": 0}), "attempt 999 is not in progress"),
])
def test_user_and_attempt_errors_say_what_to_do(store, call, message):
    store.add_user("ada", "instructor", "correct horse")
    with pytest.raises(SpinesimError, match=message):
        call(store)


def test_a_database_url_that_cannot_work_is_a_clear_error(tmp_path):
    with pytest.raises(SpinesimError, match="not a database URL"):
        Store("not a url")
    with pytest.raises(SpinesimError, match="database driver for 'postgresql'|cannot open the database"):
        Store("postgresql://nobody@127.0.0.1:1/none")


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("ilesi-default")


def test_each_action_is_in_the_database_before_act_returns(store, scenario, small_spine):
    trainee = store.add_user("ben", "trainee", "battery staple")
    attempt = LiveAttempt.start(store, trainee.id, scenario, small_spine)
    elsewhere = Store(store.url)  # another connection, as after a crash
    assert [r["type"] for r in elsewhere.actions(attempt.attempt_id)] == ["set_carm"]
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    assert [r["type"] for r in elsewhere.actions(attempt.attempt_id)] == ["set_carm", "fluoro_shot"]
    with pytest.raises(SpinesimError, match="there is no needle"):
        attempt.act({"type": "advance", "mm": 5})
    assert len(elsewhere.actions(attempt.attempt_id)) == 2 == len(attempt.session.actions)
    # Two writers on one attempt cannot interleave: the second is refused, nothing is lost.
    with pytest.raises(SpinesimError, match="does not follow"):
        elsewhere.append_action(attempt.attempt_id, 5, {"type": "finish", "t": 1.0})
    # The log other tools read is written from the rows.
    log = elsewhere.log_text(attempt.attempt_id)
    header = json.loads(log.splitlines()[0])
    assert header == {"spinesim_log": 1, "scenario": "ilesi-default", "seed": scenario.seed}


def test_a_crashed_attempt_resumes_with_every_state_and_image(store, scenario, small_spine, tmp_path):
    trainee = store.add_user("ben", "trainee", "battery staple")
    attempt = LiveAttempt.start(store, trainee.id, scenario, small_spine)
    point = attempt.session.target.entry_point
    for record in ({"type": "fluoro_shot", "mode": "pulse"},
                   {"type": "place_needle", "entry": point.tolist(), "direction": attempt.session.target.textbook_direction.tolist()},
                   {"type": "advance", "mm": 15}, {"type": "fluoro_shot", "mode": "pulse"}):
        attempt.act(record)
    before_crash, images = attempt.session.state.to_json(), [shot.data_url for shot in attempt.shots]
    del attempt  # the workstation died here; only the database is left
    interrupted = Store(store.url).unfinished_attempt(trainee.id)
    assert interrupted is not None and interrupted.actions == 5
    resumed = LiveAttempt.resume(Store(store.url), interrupted.id, scenario, small_spine)
    assert resumed.session.state.to_json() == before_crash
    assert [shot.data_url for shot in resumed.shots] == images  # the same pixels, re-rendered
    assert resumed.now() >= resumed.session.state.t
    # The same log replayed by the session engine's own reader gives the same state.
    path = tmp_path / "attempt.jsonl"
    path.write_text(store.log_text(interrupted.id))
    from simulator.session.replay import replay

    replayed = replay(scenario, small_spine, path)
    assert replayed.state.to_json() == resumed.session.state.to_json()
    assert read_log(path).header["seed"] == scenario.seed
    resumed.act({"type": "withdraw", "mm": 5})
    resumed.act({"type": "finish"})
    finished = store.attempt(interrupted.id)
    assert finished.status == "finished" and finished.actions == 7 and finished.report["metrics"]["fluoro_shots"] == 2
    assert store.unfinished_attempt(trainee.id) is None


def test_finishing_grades_the_live_session_once_without_folding_its_log_again(store, scenario, small_spine,
                                                                              monkeypatch):
    """Finish, the stored report and the report page all read the live session: one grade, and the
    trainee's actions are folded once (as they were played); only the expert's path is replayed."""
    import scoring.report
    import simulator.session.fold

    graded, folds = [], {}
    original_report_of, original_apply = scoring.report.report_of, simulator.session.fold.Session.apply

    def apply(session, action):
        events = original_apply(session, action)
        folds.setdefault(id(session), []).append(session.actions[-1].type)
        return events

    monkeypatch.setattr(scoring.report, "report_of", lambda attempt: graded.append(1) or original_report_of(attempt))
    monkeypatch.setattr(simulator.session.fold.Session, "apply", apply)
    trainee = store.add_user("ben", "trainee", "battery staple")
    attempt = LiveAttempt.start(store, trainee.id, scenario, small_spine)
    target = attempt.session.target
    for record in ({"type": "place_needle", "entry": target.entry_point.tolist(),
                    "direction": target.textbook_direction.tolist()},
                   {"type": "advance", "mm": 15}, {"type": "fluoro_shot", "mode": "pulse"}, {"type": "finish"}):
        attempt.act(record)
    stored = store.attempt(attempt.attempt_id).report
    assert attempt.report() == stored and "<html" in attempt.report_page().lower()
    assert graded == [1]
    played = ["set_carm", "place_needle", "advance", "fluoro_shot", "finish"]
    assert [types for types in folds.values() if types == played] == [played]  # the live session's, only


def test_login_is_required_beyond_localhost(store):
    with pytest.raises(SpinesimError, match="no user can log in.*spinesim users add"):
        Portal(PortalConfig(host="0.0.0.0", db_url=store.url))
    with pytest.raises(SpinesimError, match="with --require-login"):
        Portal(PortalConfig(host="127.0.0.1", db_url=store.url, require_login=True))
    store.local_trainee()  # a passwordless user does not count
    with pytest.raises(SpinesimError, match="no user can log in"):
        Portal(PortalConfig(host="10.0.0.5", db_url=store.url))
    assert not Portal(PortalConfig(host="127.0.0.1", db_url=store.url)).config.login_required
    store.add_user("ada", "instructor", "correct horse")
    assert Portal(PortalConfig(host="0.0.0.0", db_url=store.url)).config.login_required


def test_users_command_adds_lists_and_changes_passwords(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    monkeypatch.setattr("click.prompt", lambda *a, **k: "correct horse")
    assert main(["users", "add", "ada", "--role", "instructor", "--db", url]) == 0
    assert main(["users", "list", "--db", url]) == 0
    assert "ada" in capsys.readouterr().out
    assert Store(url).authenticate("ada", "correct horse").role == "instructor"
    monkeypatch.setattr("click.prompt", lambda *a, **k: "battery staple")
    assert main(["users", "passwd", "ada", "--db", url]) == 0
    assert Store(url).authenticate("ada", "battery staple") is not None
    assert main(["users", "add", "ada", "--role", "trainee", "--db", url]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("click.prompt", lambda *a, **k: "short")
    assert main(["users", "add", "bob", "--role", "trainee", "--db", url]) == 1
    assert "too short" in capsys.readouterr().err


def test_serve_refuses_to_listen_on_the_network_without_users(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["serve", "--host", "0.0.0.0", "--port", "1", "--db", url]) == 1
    assert "spinesim users add NAME --role instructor" in capsys.readouterr().err


def _graded_attempt(store, user_id, scenario, small_spine) -> dict:
    """A real attempt at ``scenario``, finished after one shot: its stored report."""
    attempt = LiveAttempt.start(store, user_id, scenario, small_spine)
    attempt.act({"type": "fluoro_shot", "mode": "pulse"})
    attempt.act({"type": "finish"})
    return store.attempt(attempt.attempt_id).report


def test_peer_grades_and_the_programme_records_as_csv_and_from_the_export_command(store, scenario, small_spine,
                                                                                   tmp_path, capsys):
    import csv

    from scoring.checklist import checklist_points
    from scoring.report import Report

    ben, cy = store.add_user("ben", "trainee", "battery staple"), store.add_user("cy", "trainee", "battery staple")
    report = _graded_attempt(store, ben.id, scenario, small_spine)
    for user, grade in ((cy, 12.5), (ben, 99.0)):  # peers with other grades, as another trainee would score
        store.finish_attempt(store.start_attempt(user.id, scenario.id, 1), report | {"grade": grade})
    store.start_attempt(cy.id, "tfesi-default", 1)  # still in progress: no grade, no report
    assert store.peer_grades(scenario.id) == [report["grade"], 12.5, 99.0] and store.peer_grades("tfesi-default") == []

    text = records_csv(store.attempts(), {"tfesi-default": "transforaminal_epidural"})
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == list(RECORD_COLUMNS) and [r["trainee"] for r in rows] == ["ben", "cy", "ben", "cy"]
    graded = Report.model_validate(report)
    first = rows[0]
    assert first["procedure"] == "interlaminar_epidural" and first["status"] == "finished"
    assert float(first["grade"]) == pytest.approx(report["grade"], abs=0.05)
    assert first["passed"] == ("yes" if report["passed"] else "no")
    assert first["flags"].split() == [flag.code for flag in graded.flags]
    assert float(first["checklist_points"]) == checklist_points(graded.checklist)
    assert int(first["checklist_steps"]) == len(graded.checklist) > 0
    assert int(first["rating_total"]) == graded.global_rating.total and first["started_utc"][:2] == "20"
    assert rows[1]["grade"] == "12.5" and rows[2]["grade"] == "99.0"
    assert rows[3] | {"attempt": "", "started_utc": ""} == dict.fromkeys(RECORD_COLUMNS, "") | {
        "trainee": "cy", "scenario": "tfesi-default", "procedure": "transforaminal_epidural", "status": "in_progress"}

    output = tmp_path / "records.csv"
    assert main(["attempts", "export", "--format", "csv", "-o", str(output), "--db", store.url]) == 0
    assert "Wrote 4 attempts" in capsys.readouterr().out
    assert output.read_text(encoding="utf-8") == text
    assert main(["attempts", "export", "--format", "csv", "-o", str(output), "--trainee", "cy", "--scenario", scenario.id, "--db", store.url]) == 0
    assert [r["grade"] for r in csv.DictReader(output.read_text(encoding="utf-8").splitlines())] == ["12.5"]
    assert main(["attempts", "export", "--format", "csv", "-o", str(output), "--trainee", "nobody", "--db", store.url]) == 1
    assert "no user called 'nobody'" in capsys.readouterr().err
