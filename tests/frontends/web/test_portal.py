"""The portal gives every user a workstation process of their own (a warm spare when it has one),
forwards only to it with the workstation's secret, and throttles password guessing."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
from pathlib import Path
from unittest import mock

import pytest
from aiohttp import ClientSession, WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from anatomy_models.anatomy import Anatomy
from frontends.store import Store
from frontends.web import portal as portal_module
from frontends.web.patients import compact_labels
from frontends.web.portal import COOKIE, Portal, PortalConfig, WorkstationProcess
from frontends.web.portal_link import SECRET_HEADER
from frontends.web.workstation import WorkstationConfig, require_secret


class _Process:
    """Stands in for a workstation process (no anatomy is loaded); a spare's warm pipe is kept."""

    started: list[_Process] = []

    def __init__(self, settings, log, *, spare, warm_fd=None):
        _Process.started.append(self)
        self.pid, self.settings = 10_000 + len(_Process.started), settings
        self.stdin = io.BytesIO() if spare else None
        self.warm_fd = os.dup(warm_fd) if warm_fd is not None else None
        self.returncode = None

    def poll(self):
        return self.returncode

    def terminate(self):
        self.returncode = -15

    def wait(self, timeout=None):
        return self.returncode

    def say_warm(self):
        os.write(self.warm_fd, b"warm\n")

    def assignment(self) -> dict:
        return json.loads(self.stdin.getvalue().decode())


class _Request:
    def __init__(self, token: str) -> None:
        self.cookies = {COOKIE: token}


@pytest.fixture()
def fake_processes(monkeypatch):
    _Process.started = []
    monkeypatch.setattr(portal_module, "start_workstation", _Process)
    yield _Process.started
    for process in _Process.started:
        if process.warm_fd is not None:
            os.close(process.warm_fd)


@pytest.fixture()
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    store.add_user("ann", "trainee", "correct horse")
    store.add_user("bob", "trainee", "battery staple")
    return store


def test_each_user_gets_a_workstation_of_their_own(store, fake_processes):
    ann, bob = store.user("ann"), store.user("bob")
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    tokens = {}
    for user in (ann, bob, ann):  # ann logs in twice (two tabs)
        response = portal._logged_in(user)
        tokens.setdefault(user.name, []).append(response.cookies[COOKIE].value)
    stations = {name: {portal.workstations[portal.user_of(_Request(t))].port for t in ts} for name, ts in tokens.items()}
    assert len(stations["ann"]) == 1 and stations["ann"] != stations["bob"]  # same user, same process; others apart
    assert len({station.process.pid for station in portal.workstations.values()}) == 2
    settings = portal.workstations[bob.id].process.settings
    assert settings["user_id"] == bob.id and settings["port"] == portal.workstations[bob.id].port
    # Each workstation has its own secret, passed in its environment (readable by its owner only).
    assert len({station.secret for station in portal.workstations.values()}) == 2
    assert settings["secret"] == portal.workstations[bob.id].secret and len(settings["secret"]) >= 40
    assert portal.user_of(_Request("forged-token")) is None


def test_a_login_takes_the_warm_spare_and_a_new_one_warms_when_none_is_starting(store, fake_processes):
    ann, bob = store.user("ann"), store.user("bob")
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=1))

    async def scenario():
        portal.client = ClientSession()
        try:
            await portal._tend_spares()
            (spare,) = portal.spares
            assert spare.user is None and "user_id" not in spare.process.settings and not spare.is_warm()
            await portal._tend_spares()  # the spare is still warming up: no second one
            assert len(fake_processes) == 1
            spare.process.say_warm()
            assert spare.is_warm()
            portal._logged_in(ann)  # ann gets the warm spare, told her id and a port on its stdin
            assert portal.workstations[ann.id] is spare and portal.spares == [] and len(fake_processes) == 1
            assert spare.process.assignment() == {"user_id": ann.id, "port": spare.port}
            await portal._tend_spares()  # ann's workstation is not serving yet: no new spare meanwhile
            assert portal.spares == []
            spare.ready = True
            await portal._tend_spares()
            (second,) = portal.spares
            portal._logged_in(bob)  # a spare still warming is still ahead of a new process
            assert portal.workstations[bob.id] is second and len(fake_processes) == 2
            second.process.returncode = 1  # it dies: the next login gets a process of its own
            portal.workstations.clear()
            portal._logged_in(bob)
            assert portal.workstations[bob.id].process.settings["user_id"] == bob.id and len(fake_processes) == 3
        finally:
            await portal.client.close()

    asyncio.run(scenario())


def test_a_spare_reads_its_assignment():
    config = WorkstationConfig(db_url="sqlite://", secret="s", warm_fd=5)
    assigned = config.assigned('{"user_id": 4, "port": 8123}\n')
    assert (assigned.user_id, assigned.port, assigned.warm_fd, assigned.secret) == (4, 8123, None, "s")
    with pytest.raises(Exception, match="expected its assignment"):
        config.assigned("")  # the portal went away


async def _workstation_stand_in(secret: str) -> TestServer:
    """An aiohttp server guarded like a workstation: a page and an echoing WebSocket."""
    async def page(_request):
        return web.Response(text="hello")

    async def echo(request):
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str("echo " + message.data)
        return socket

    app = web.Application(middlewares=[require_secret(secret)])
    app.router.add_get("/", page)
    app.router.add_get("/ws", echo)
    server = TestServer(app)
    await server.start_server()
    return server


def test_a_workstation_refuses_requests_and_websockets_without_its_secret():
    async def scenario():
        station = await _workstation_stand_in("s3cret")
        async with TestClient(station) as client:
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}):
                assert (await client.get("/", headers=headers)).status == 403
                with pytest.raises(WSServerHandshakeError) as refused:
                    await client.ws_connect("/ws", headers=headers)
                assert refused.value.status == 403
            assert (await client.get("/", headers={SECRET_HEADER: "s3cret"})).status == 200

    asyncio.run(scenario())


def test_the_portal_forwards_pages_and_websockets_with_the_secret(store, fake_processes):
    ann = store.user("ann")
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))

    async def scenario():
        station = await _workstation_stand_in("per-station-secret")
        portal.workstations[ann.id] = WorkstationProcess(_Process({}, None, spare=False),
                                                         "per-station-secret", ann, station.port)
        async with TestClient(TestServer(portal.app())) as client:
            assert (await client.post("/login", data={"name": "ann", "password": "correct horse"},
                                      allow_redirects=False)).status == 302
            reply = await client.get("/")
            assert reply.status == 200 and await reply.text() == "hello"
            socket = await client.ws_connect("/ws")
            await socket.send_str("ping")
            assert (await socket.receive()).data == "echo ping"
            await socket.close()
            # A browser cannot smuggle a secret of its own through the portal either.
            assert (await client.get("/", headers={SECRET_HEADER: "guess"})).status == 200
        await station.close()

    asyncio.run(scenario())


def test_failed_logins_are_logged_and_throttled_per_user(store, fake_processes, caplog):
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    portal.throttle.limits["name"] = 3

    async def scenario():
        async with TestClient(TestServer(portal.app())) as client:
            for _ in range(3):
                reply = await client.post("/login", data={"name": "ann", "password": "guess"}, allow_redirects=False)
                assert reply.status == 200 and "wrong password" in await reply.text()
            # Locked for this name now, even with the right password; other users are not.
            reply = await client.post("/login", data={"name": "ann", "password": "correct horse"},
                                      allow_redirects=False)
            assert reply.status == 429 and "Too many failed logins" in await reply.text()
            assert int(reply.headers["Retry-After"]) > 500
            reply = await client.post("/login", data={"name": "bob", "password": "battery staple"},
                                      allow_redirects=False)
            assert reply.status == 302

    with caplog.at_level(logging.INFO, logger="spinesim.portal"):
        asyncio.run(scenario())
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("failed login")]
    assert failed == ["failed login for user 'ann' from 127.0.0.1"] * 3
    assert any("login refused for user 'ann'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("0.0.0.0", False), ("192.168.1.20", False), ("example.org", False)])
def test_only_loopback_addresses_skip_the_login(host, loopback):
    assert portal_module.is_loopback(host) is loopback


def test_a_workstation_holds_label_maps_in_one_byte_when_the_ids_fit(small_spine):
    copy = Anatomy(ct=small_spine.ct, label_table=small_spine.label_table, labels=small_spine.labels)
    compacted = compact_labels(copy)
    assert compacted.labels.array.dtype == "uint8" and small_spine.labels.array.dtype == "uint16"
    assert (compacted.labels.array == small_spine.labels.array).all()
    assert compacted.tissue_map()[1] == small_spine.tissue_map()[1]
    assert (compacted.tissue_map()[0] == small_spine.tissue_map()[0]).all()


def test_the_health_counts_answer_this_machine_only(store, fake_processes):
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    portal._logged_in(store.user("ann"))

    def asked_from(address):
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda key, default=None: (address, 40000) if key == "peername" else default
        return asyncio.run(portal.health(make_mocked_request("GET", "/portal/health", transport=transport)))

    counts = json.loads(asked_from("127.0.0.1").text)
    assert counts == {"spares": 0, "spares_warm": 0, "workstations": 1, "workstations_ready": 0}
    with pytest.raises(web.HTTPNotFound):
        asked_from("192.168.1.30")


class _OutlivesSigterm(_Process):
    """A workstation that SIGTERM does not end (a worker of it still busy); SIGKILL does."""

    def terminate(self):
        self.terminated = True

    def wait(self, timeout=None):
        if self.returncode is None:
            raise subprocess.TimeoutExpired("workstation", timeout)
        return self.returncode

    def kill(self):
        self.returncode = -9


def test_the_portal_stopping_ends_a_logged_out_users_workstation_that_outlived_sigterm(store, fake_processes,
                                                                                        monkeypatch):
    """multiprocessing's exit handler waits for every child still running with no limit: a logged-out user's
    workstation that SIGTERM had not ended kept a stopped portal up until it was killed."""
    monkeypatch.setattr(portal_module, "start_workstation", _OutlivesSigterm)
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    token = portal._logged_in(store.user("ann")).cookies[COOKIE].value
    station = portal.workstations[store.user("ann").id]
    asyncio.run(portal.logout(make_mocked_request("GET", "/logout", headers={"Cookie": f"{COOKIE}={token}"})))
    assert station.process.terminated and station.process.returncode is None and portal.workstations == {}
    asyncio.run(portal._on_cleanup(None))
    assert station.process.returncode == -9


def test_the_workstations_reports_live_in_the_portals_folder_and_go_with_it(store, fake_processes):
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    folder = Path(portal.reports.name)
    portal._logged_in(store.user("ann"))
    station = portal.workstations[store.user("ann").id]
    assert station.process.settings["reports_dir"] == str(folder) and folder.is_dir()
    (folder / "spinesim-reports-x").mkdir()  # a workstation's own subfolder, with a report in it
    (folder / "spinesim-reports-x" / "attempt-1-10.html").write_text("<html></html>")
    asyncio.run(portal._on_cleanup(None))
    assert not folder.exists()
