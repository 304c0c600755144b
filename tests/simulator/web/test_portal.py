"""The portal gives every user a workstation process of their own and forwards only to it."""

from __future__ import annotations

import pytest

from simulator.store import Store
from simulator.web import portal as portal_module
from simulator.web.portal import COOKIE, Portal, PortalConfig


class _Process:
    """Stands in for a workstation process (no anatomy is loaded)."""

    count = 0

    def __init__(self, command, env, **_):
        _Process.count += 1
        self.pid, self.env = 10_000 + _Process.count, env

    def poll(self):
        return None


class _Request:
    def __init__(self, token: str) -> None:
        self.cookies = {COOKIE: token}


def test_each_user_gets_a_workstation_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(portal_module.subprocess, "Popen", _Process)
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    ann = store.add_user("ann", "trainee", "correct horse")
    bob = store.add_user("bob", "trainee", "battery staple")
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url))
    tokens = {}
    for user in (ann, bob, ann):  # ann logs in twice (two tabs)
        response = portal._logged_in(user)
        tokens.setdefault(user.name, []).append(response.cookies[COOKIE].value)
    stations = {name: {portal.workstations[portal.user_of(_Request(t))].port for t in ts} for name, ts in tokens.items()}
    assert len(stations["ann"]) == 1 and stations["ann"] != stations["bob"]  # same user, same process; others apart
    assert len({station.process.pid for station in portal.workstations.values()}) == 2
    assert '"user_id": %d' % bob.id in portal.workstations[bob.id].process.env["SPINESIM_WORKSTATION"]
    assert portal.user_of(_Request("forged-token")) is None


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("0.0.0.0", False), ("192.168.1.20", False), ("example.org", False)])
def test_only_loopback_addresses_skip_the_login(host, loopback):
    assert portal_module.is_loopback(host) is loopback
