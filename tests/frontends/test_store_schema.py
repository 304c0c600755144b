"""The store's schema across versions and servers (issue 20): a database from an older spinesim opens with
every row kept and the programme tables added; a newer one is refused untouched; cohorts, assignments and
comments work; and all of it on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, inspect, text

import frontends.store as store_module
from anatomy_models.errors import SpinesimError
from frontends.store import SCHEMA_VERSION, Store
from tests.frontends.postgres import postgresql_server

V1_TABLES = ("users", "attempts", "actions")  # the schema before versions


@pytest.fixture(scope="module")
def postgresql_url():
    with postgresql_server() as url:
        yield url


def _version_1_database(url: str) -> None:
    """A database as spinesim wrote it before schema versions, with a user, an attempt and its action."""
    engine = create_engine(url)
    store_module._Base.metadata.create_all(engine, tables=[store_module._Base.metadata.tables[t] for t in V1_TABLES])
    now = datetime.now(timezone.utc)
    with engine.begin() as db:
        db.execute(text("INSERT INTO users (id, name, role, password_hash, created) VALUES (1, 'ben', 'trainee', :h, :t)"),
                   {"h": store_module.hash_password("battery staple"), "t": now})
        db.execute(text("INSERT INTO attempts (id, user_id, scenario_id, seed, started, status, elapsed_s, report_json) "
                        "VALUES (1, 1, 'tfesi-default', 7, :t, 'finished', 12.5, :r)"), {"t": now, "r": json.dumps({"grade": 81.5})})
        db.execute(text("INSERT INTO actions (id, attempt_id, seq, t, record_json) VALUES (1, 1, 1, 2.0, :a)"),
                   {"a": json.dumps({"type": "fluoro_shot", "t": 2.0})})
    engine.dispose()


def _upgrades_keeping_every_row(url: str) -> None:
    _version_1_database(url)
    store = Store(url)
    with store.engine.connect() as db:
        assert db.execute(text("SELECT version FROM schema_version")).scalar_one() == SCHEMA_VERSION == 3
    assert {"cohorts", "cohort_members", "assignments", "comments", "cases"} <= set(
        inspect(store.engine).get_table_names())
    assert store.authenticate("ben", "battery staple").name == "ben"
    [attempt] = store.attempts()
    assert (attempt.scenario_id, attempt.seed, attempt.report["grade"], attempt.actions) == ("tfesi-default", 7, 81.5, 1)
    assert store.peer_grades("tfesi-default") == [81.5]
    Store(url)  # opening again changes nothing


def _programme(store: Store) -> None:
    """Cohorts, assignments with due dates, and comments at a step of an attempt."""
    store.add_user("ada", "instructor", "correct horse")
    for name in ("ben", "cat"):
        store.add_user(name, "trainee", "battery staple")
    store.add_cohort("year-1")
    store.join_cohort("year-1", "ben")
    store.join_cohort("year-1", "ben")
    store.join_cohort("year-1", "cat")
    assert store.cohorts() == {"year-1": ["ben", "cat"]}
    soon = datetime.now(timezone.utc) + timedelta(days=3)
    store.assign("ilesi-default", by="ada", cohort="year-1", due=soon + timedelta(days=4))
    store.assign("tfesi-default", by="ada", user="ben", due=soon)
    store.assign("facet-default", by="ada", user="ben")
    ben, cat = store.user("ben"), store.user("cat")
    assert [a.scenario_id for a in store.assignments_for(ben.id)] == ["tfesi-default", "ilesi-default", "facet-default"]
    assert [(a.scenario_id, a.cohort) for a in store.assignments_for(cat.id)] == [("ilesi-default", "year-1")]
    assert store.assignments_for(ben.id)[0].due == soon.replace(microsecond=soon.microsecond)
    attempt = store.start_attempt(ben.id, "tfesi-default", 3)
    store.append_action(attempt, 1, {"type": "fluoro_shot", "t": 1.0})
    store.finish_attempt(attempt, {"grade": 90.0, "passed": True})
    assert [(a.scenario_id, a.done) for a in store.assignments_for(ben.id)] == [
        ("ilesi-default", False), ("facet-default", False), ("tfesi-default", True)]
    ada = store.user("ada")
    store.add_comment(attempt, ada.id, "Take the lateral before the last advance.", step=1)
    store.add_comment(attempt, ada.id, "Good contrast reading.")
    assert [(c.author, c.step, c.text) for c in store.comments(attempt)] == [
        ("ada", 1, "Take the lateral before the last advance."), ("ada", None, "Good contrast reading.")]
    store.save_case("dept-case", "id: dept-case", by="ada")
    assert [(c.scenario_id, c.yaml_text, c.author) for c in store.cases()] == [("dept-case", "id: dept-case", "ada")]
    for refused, message in ((lambda: store.add_comment(attempt, ada.id, "x", step=5), "step 5 is not in attempt"),
                             (lambda: store.add_comment(attempt, ada.id, "  "), "a comment has 1 to"),
                             (lambda: store.assign("tfesi-default", by="ben", user="cat"), "only an instructor"),
                             (lambda: store.assign("tfesi-default", by="ada"), "to a trainee or to a cohort"),
                             (lambda: store.join_cohort("year-1", "ada"), "cohorts hold trainees"),
                             (lambda: store.join_cohort("nope", "ben"), "no cohort called 'nope'"),
                             (lambda: store.save_case("dept-case", "id: other", by="ada"), "already has a case"),
                             (lambda: store.save_case("dept-2", "id: dept-2", by="ben"), "only an instructor saves")):
        with pytest.raises(SpinesimError, match=message):
            refused()


def test_a_database_from_before_schema_versions_upgrades_keeping_every_row(tmp_path):
    _upgrades_keeping_every_row(f"sqlite:///{tmp_path / 'old.db'}")


def test_a_database_from_a_newer_spinesim_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url)
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("UPDATE schema_version SET version = 99"))
    with pytest.raises(SpinesimError, match="schema version 99, written by a newer spinesim; this one reads up to"):
        Store(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT version FROM schema_version")).scalar_one() == 99


def test_a_failed_upgrade_step_leaves_the_database_at_its_version(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _version_1_database(url)

    def broken(connection):
        store_module._Cohort.__table__.create(connection)
        raise RuntimeError("disk full")

    monkeypatch.setitem(store_module._MIGRATIONS, 2, broken)
    with pytest.raises(RuntimeError):
        Store(url)
    engine = create_engine(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT version FROM schema_version")).scalar_one() == 1
    monkeypatch.undo()
    _check = Store(url)
    with _check.engine.connect() as db:
        assert db.execute(text("SELECT version FROM schema_version")).scalar_one() == SCHEMA_VERSION


def test_cohorts_assignments_and_comments(tmp_path):
    _programme(Store(f"sqlite:///{tmp_path / 'spinesim.db'}"))


def test_postgresql_upgrade_and_programme(postgresql_url):
    _upgrades_keeping_every_row(postgresql_url)
    engine = create_engine(postgresql_url)
    with engine.begin() as db:
        for table in ("cases", "comments", "assignments", "cohort_members", "cohorts", "actions", "attempts", "users",
                      "schema_version"):
            db.execute(text(f"DROP TABLE {table}"))
    engine.dispose()
    _programme(Store(postgresql_url))


def test_a_plain_postgresql_url_uses_the_bundled_driver(monkeypatch):
    """psycopg2 (LGPL) is not a dependency: without it a plain URL gets pg8000; with it, psycopg2."""
    monkeypatch.setattr(store_module.importlib.util, "find_spec", lambda name: None)
    assert store_module._with_driver("postgresql://u@h/db") == "postgresql+pg8000://u@h/db"
    assert store_module._with_driver("postgres://u@h/db") == "postgresql+pg8000://u@h/db"
    assert store_module._with_driver("postgresql+pg8000://u@h/db") == "postgresql+pg8000://u@h/db"
    assert store_module._with_driver("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setattr(store_module.importlib.util, "find_spec", lambda name: object())
    assert store_module._with_driver("postgres://u@h/db") == "postgresql://u@h/db"


def test_the_programme_from_the_command_line(tmp_path, capsys):
    from frontends.cli import main

    db = ["--db", f"sqlite:///{tmp_path / 'spinesim.db'}"]
    store = Store(db[1])
    store.add_user("ada", "instructor", "correct horse")
    store.add_user("ben", "trainee", "battery staple")
    assert main(["cohorts", "add", "year-1", *db]) == 0
    assert main(["cohorts", "join", "year-1", "ben", *db]) == 0
    assert main(["assign", "tfesi-default", "--cohort", "year-1", "--by", "ada", "--due", "2027-01-15", *db]) == 0
    assert "Assigned tfesi-default to cohort year-1, due 2027-01-15." in capsys.readouterr().out
    assert main(["assignments", "ben", *db]) == 0
    listing = capsys.readouterr().out
    assert "tfesi-default" in listing and "2027-01-15" in listing and "year-1" in listing
    assert main(["assign", "tfesi-default", "--trainee", "ben", "--by", "ben", *db]) == 1
    assert "only an instructor assigns cases" in capsys.readouterr().err
