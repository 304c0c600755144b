"""The web tests' patient (the 2 mm built-in spine, stored as ``web-spine`` for ``serve --anatomy``) and the
``spinesim serve`` the browser tests share.

One server per test process (each pytest-xdist worker: ``-n 2`` distributes test by test, ``--dist load``, so
each worker starts its own the first time one of its tests asks for it) on a store of its own, stopped as the
session ends; its stop is checked: no workstation or zygote outlives it. A test gets
users of its own (:func:`new_user`) and pages of its own (:func:`served_page`), logged out when it ends, which
stops their workstations: what one test does (an attempt left open, a tab or filter chosen, a case assigned)
never reaches another. Modules whose server must differ (another opening case, a --scenarios folder, a store
whose every record the test counts) start their own."""

from __future__ import annotations

import itertools

import pytest

from anatomy_models.store import save_anatomy

ANATOMY = "web-spine"
PASSWORD = "a-long-password"
SCENARIO = "ilesi-default"  # the shared server's opening case (serve's default)


@pytest.fixture(scope="session")
def patient(small_spine):
    save_anatomy(small_spine, ANATOMY)
    return small_spine


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> str:
    """The URL of the shared server's store (SQLite). Each test adds the users it works as; the one made here, whom
    no test logs in as, is there because ``serve --require-login`` refuses to start with no user who can log in."""
    from tests.frontends.web import browser as b

    return b.database_with_users(tmp_path_factory.mktemp("web-shared"), {"instructor-0": "instructor"}, PASSWORD)


@pytest.fixture(scope="session")
def server(patient, database, tmp_path_factory):
    """``spinesim serve --require-login`` on :func:`database` with the web tests' patient, for the session."""
    from tests.frontends.web import browser as b

    running = b.Server(database, ANATOMY, "--require-login", log=tmp_path_factory.mktemp("logs") / "serve.log")
    yield running
    below = b.descendant_pids(running.process.pid)  # the zygote, the workstations, multiprocessing's helper
    # SIGTERM, as a service manager stops it; SIGKILL after 60 s, a ceiling for a loaded machine (it stops in
    # seconds): a server that had to be killed ended with -9, not 0. Before suite16 a test that logged out while its
    # workstation still worked (a report written after Finish) left that workstation waiting for good, and the server
    # waited for it until killed.
    running.stop(timeout_s=60.0)
    assert running.process.returncode == 0, f"the shared server did not stop on SIGTERM ({running.process.returncode})"
    assert b.wait_ended(below) == [], "the shared server left processes behind"


@pytest.fixture(scope="session")
def user_numbers():
    return itertools.count(1)


@pytest.fixture()
def new_user(database, user_numbers):
    """Add a user of the shared store for this test alone: ``new_user(role) -> name`` (password
    :data:`PASSWORD`)."""
    from frontends.store import Store

    store = Store(database)

    def add(role: str) -> str:
        name = f"{role}-{next(user_numbers)}"
        store.add_user(name, role, PASSWORD)
        return name

    return add


@pytest.fixture()
def trainee_name(new_user) -> str:
    """A trainee of the shared store for this test alone: their name."""
    return new_user("trainee")


@pytest.fixture()
def instructor_name(new_user) -> str:
    """An instructor of the shared store for this test alone: their name."""
    return new_user("instructor")


@pytest.fixture()
def served_page(new_page, server):
    """Open a page for the shared server, ``served_page(**context options) -> page``; as the test ends each is
    logged out (the portal stops the user's workstation: a test leaves no process working) and closed."""
    pages = []

    def open_page(**options):
        pages.append(new_page(**options))
        return pages[-1]

    yield open_page
    for page in pages:
        page.context.request.get(server.url + "logout", max_redirects=0)


@pytest.fixture()
def page(served_page):
    """A page for the shared server, 1600 x 1000."""
    return served_page()


@pytest.fixture(scope="session")
def expert(patient):
    """The session of :data:`SCENARIO` on the patient, and the expert's actions in it."""
    from scenarios.schema import load_scenario
    from simulator.case.planner import expert_actions, plan_trajectory
    from simulator.session.fold import Session

    session = Session(load_scenario(SCENARIO), patient)
    return session, expert_actions(session.scenario, session.target,
                                   plan_trajectory(session.tracer, session.target, session.spec))
