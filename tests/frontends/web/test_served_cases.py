"""Cases served from a folder (``spinesim serve --scenarios DIR``) without a browser: the picker groups them
under the folder's name and a trainee starts an attempt at one, on the patient its YAML names by a path
relative to the file; its objectives and difficulty are on the case card; the patient explanation is
written into the workstation's reports and linked (self-contained), for an instructor at any time and
for a trainee once they finished an attempt at the case. The ``serve`` command warns of a bad file and
refuses an id declared twice before anything starts."""

from __future__ import annotations

import re

import pytest

from anatomy_models.errors import SpinesimError
from anatomy_models.store import anatomy_folder
from frontends.cli import main
from frontends.store import Store
from frontends.web.handlers import Handlers
from frontends.web.patients import Patients
from frontends.web.views import initial_state
from scenarios.catalogue import read_catalogue
from tests.frontends.web.conftest import ANATOMY
from tests.scenarios.test_catalogue import write_case


@pytest.fixture()
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'spinesim.db'}")


@pytest.fixture()
def ward(patient, tmp_path):
    """A folder of cases whose patient is the web tests' spine, named by a path relative to the files."""
    (tmp_path / "patients").mkdir()
    (tmp_path / "patients" / "spine").symlink_to(anatomy_folder(ANATOMY), target_is_directory=True)
    folder = tmp_path / "ward-a"
    path = write_case(folder, "l3l4.yaml", "ward-l3l4")
    path.write_text(path.read_text().replace("{builtin: default}", "{path: ../patients/spine}"))
    write_case(folder, "broken.yaml", "ward-broken", level="L2-L4")
    return folder


def _handlers(store, user, catalogue, reports, patients=None) -> tuple[Handlers, dict]:
    page: dict = {}
    handlers = Handlers(store, user, catalogue.scenarios, patients or Patients(ANATOMY), reports,
                        show=lambda **changes: page.update(changes))
    return handlers, page


def test_a_served_case_is_in_the_picker_under_its_folder_and_starts_an_attempt(ward, store, tmp_path):
    catalogue = read_catalogue([ward])
    ben = store.add_user("ben", "trainee", "battery staple")
    items = initial_state(ben, catalogue, "ward-l3l4")["scenario_items"]
    headers = [item["title"] for item in items if item.get("type") == "subheader"]
    assert headers == ["Library", "ward-a"]
    assert items[items.index({"type": "subheader", "title": "ward-a"}) + 1] == {
        "value": "ward-l3l4", "title": "A ward's own interlaminar case",
        "props": {"subtitle": "advanced · 2 objectives"}}  # the picker's second line
    assert "ward-broken" not in catalogue.scenarios
    assert "broken.yaml: line 10, field 'target.level'" in catalogue.warnings[0]

    handlers, page = _handlers(store, ben, catalogue, tmp_path, patients=Patients(None))
    page.update(handlers.scenario_view("ward-l3l4"))
    assert page["scenario"]["difficulty"] == "advanced"
    assert page["scenario"]["objectives"] == ["Count the level on AP.", "Judge depth on the contralateral oblique."]
    handlers.start_attempt("ward-l3l4")  # its patient loads from ../patients/spine, wherever the server runs
    handlers.shot()
    assert page["attempt_active"] and page["shots"] == 1 and page["fluoro_src"].startswith("data:image/jpeg")
    assert [a.scenario_id for a in store.attempts(user_id=ben.id)] == ["ward-l3l4"]


def test_the_patient_explanation_is_written_and_linked_for_whoever_may_see_it(ward, store, tmp_path):
    catalogue = read_catalogue([ward])
    reports = tmp_path / "reports"
    reports.mkdir()
    ben = store.add_user("ben", "trainee", "battery staple")
    trainee, trainee_page = _handlers(store, ben, catalogue, reports)
    with pytest.raises(SpinesimError, match="Finish an attempt at this case first"):
        trainee.explain_case("ward-l3l4")
    trainee.start_attempt("ward-l3l4")
    with pytest.raises(SpinesimError, match="Finish the attempt first"):
        trainee.explain_case("ward-l3l4")
    assert "explain_page" not in trainee_page

    ada = store.add_user("ada", "instructor", "correct horse")
    instructor, page = _handlers(store, ada, catalogue, reports)
    instructor.explain_case("ward-l3l4")
    assert page["explain_for"] == "ward-l3l4" and page["explain_page"] == "reports/explain-ward-l3l4.html"
    html = (reports / "explain-ward-l3l4.html").read_text(encoding="utf-8")
    assert "<html" in html and 'id="animation"' in html
    # Self-contained: every picture and script inside the page, nothing fetched from a network.
    assert not re.search(r"(src|href)=\"(?!data:)", html) and "http://" not in html and "https://" not in html

    trainee.finish()
    trainee.explain_case("ward-l3l4")  # now it is theirs to see (the page is written once)
    assert trainee_page["explain_page"] == "reports/explain-ward-l3l4.html"
    with pytest.raises(SpinesimError, match="unknown scenario"):
        instructor.explain_case("ward-broken")


def test_serve_warns_of_a_bad_file_and_refuses_an_id_declared_twice(ward, tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr("frontends.web.portal.serve", started.append)
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    assert main(["serve", "--db", url, "--scenarios", str(ward), "--scenario", "ward-l3l4"]) == 0
    [config] = started
    assert config.scenario_folders == [str(ward.resolve())] and config.scenario == "ward-l3l4"
    err = capsys.readouterr().err
    assert "warning:" in err and "broken.yaml: line 10, field 'target.level'" in err and "(left out)" in err

    twin = write_case(tmp_path / "ward-b", "same.yaml", "ward-l3l4")
    assert main(["serve", "--db", url, "--scenarios", str(ward), "--scenarios", str(twin.parent)]) == 1
    err = capsys.readouterr().err
    assert "declared twice" in err and "same.yaml" in err and "l3l4.yaml" in err and len(started) == 1


def test_serve_opens_no_case_of_its_own_unless_asked(tmp_path, monkeypatch):
    """Without --scenario the workstations open on a trainee's next assignment, else the default case
    (frontends.web.workstation.first_scenario): the command no longer fills in ilesi-default, which won over it."""
    started = []
    monkeypatch.setattr("frontends.web.portal.serve", started.append)
    assert main(["serve", "--db", f"sqlite:///{tmp_path / 'serve.db'}"]) == 0
    assert started[0].scenario is None
