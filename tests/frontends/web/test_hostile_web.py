"""The web server against a hostile browser, on loopback: concurrent password guesses cannot outrun the
login throttle; a WebSocket chunk header claiming a huge message is refused at the portal and at the
workstation without the memory it claims; every response carries the security headers; request bodies
are bounded; an imported CT without landmarks gets estimated ones, and one without labels either is
refused when ``spinesim serve`` starts."""

from __future__ import annotations

import asyncio
import threading

import msgpack
import pytest
from aiohttp import ClientSession, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.store import anatomy_folder, save_anatomy
from frontends.commands.serve import check_patient
from frontends.store import Store
from frontends.web.patients import Patients
from frontends.web.portal import MAX_BODY_BYTES, LoginThrottle, Portal, PortalConfig, WorkstationProcess
from frontends.web.portal_link import SECRET_HEADER
from frontends.web.workstation import guard
from scenarios.schema import library_scenarios
from tests.frontends.web.test_portal import _Process, fake_processes  # noqa: F401 - the fixture

CLAIMED_BYTES = 256 * 1024**2


def _chunk(message_id: int, offset: int, size: int, content: bytes = b"") -> bytes:
    """A wslink chunk: its header (id, offset, whole message's size) and its content."""
    return b"".join(n.to_bytes(4, "little") for n in (message_id, offset, size)) + content


@pytest.fixture()
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'spinesim.db'}")
    store.add_user("ann", "trainee", "correct horse")
    return store


def _portal(store) -> Portal:
    portal = Portal(PortalConfig(host="0.0.0.0", db_url=store.url, spare=0))
    portal._keep_spares = lambda: asyncio.sleep(0)  # no workstation processes in these tests
    return portal


def test_sixty_concurrent_wrong_passwords_check_only_as_many_as_the_throttle_allows(store, fake_processes):
    portal = _portal(store)
    checked = []
    authenticate = portal.store.authenticate
    portal.store.authenticate = lambda name, password: checked.append(name) or authenticate(name, password)

    async def scenario() -> list[int]:
        async with TestClient(TestServer(portal.app())) as client:
            replies = await asyncio.gather(*[client.post("/login", data={"name": "ann", "password": f"guess {i}"},
                                                         allow_redirects=False) for i in range(60)])
            return [reply.status for reply in replies]

    statuses = asyncio.run(scenario())
    assert len(checked) == 5 and statuses.count(429) == 55 and statuses.count(200) == 5


def test_the_throttle_admits_exactly_its_limit_from_many_threads_at_once():
    throttle = LoginThrottle(per_name=5, per_address=1000, window_s=600)
    start, admitted = threading.Barrier(32), []

    def guess(index: int) -> None:
        start.wait()
        if throttle.admit("ann", f"10.0.0.{index}", now=1.0) == 0:
            admitted.append(index)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 5
    throttle.succeeded("ann", f"10.0.0.{admitted[0]}", at=1.0)  # a right password frees its place
    assert throttle.admit("ann", "10.0.0.99", now=2.0) == 0 and throttle.admit("ann", "10.0.0.99", now=2.0) > 0


async def _recording_station(secret: str, frames: list) -> TestServer:
    """A stand-in workstation whose WebSocket records the frames it gets."""
    async def socket(request):
        reply = web.WebSocketResponse()
        await reply.prepare(request)
        async for message in reply:
            frames.append(message.data)
        return reply

    async def page(_request):
        return web.Response(text="<html>workstation</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/", page)
    app.router.add_get("/reports/attempt-1-3.html", page)
    server = TestServer(app)
    await server.start_server()
    return server


def _logged_in_portal(store, station: TestServer) -> Portal:
    portal = _portal(store)
    ann = store.user("ann")
    portal.workstations[ann.id] = WorkstationProcess(_Process({}, None, spare=False), "s", ann,
                                                     station.port, ready=True)
    return portal


@pytest.mark.parametrize("frames, forwarded", [
    ([_chunk(100 + i, 0, CLAIMED_BYTES, b"x") for i in range(4)], 0),
    ([_chunk(1, 0, 600_000, b"x"), _chunk(2, 0, 600_000, b"x")], 1),  # each fits, together too big
    ([_chunk(3, 0, 10, b"x" * 20)], 0),  # a chunk beyond its message
    ([b"\x01\x02"], 0),  # shorter than a header
    ([_chunk(4, 0, 2 * 1024**2, b"x" * (2 * 1024**2))], 0)])  # a frame over the limit
def test_the_portal_refuses_frames_whose_header_claims_too_much(store, fake_processes, frames, forwarded):
    received = []

    async def scenario():
        station = await _recording_station("s", received)
        async with TestClient(TestServer(_logged_in_portal(store, station).app())) as client:
            await client.post("/login", data={"name": "ann", "password": "correct horse"}, allow_redirects=False)
            socket = await client.ws_connect("/ws")
            await socket.send_bytes(_chunk(9, 0, 3, b"abc"))  # a small message goes through
            for frame in frames:
                await socket.send_bytes(frame)
            closing = await socket.receive(timeout=5)
            await socket.close()
        await station.close()
        return closing

    closing = asyncio.run(scenario())
    assert closing.type == WSMsgType.CLOSE and closing.data == 1009
    assert received == [_chunk(9, 0, 3, b"abc"), *frames[:forwarded]]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1024**2


def test_a_workstation_does_not_allocate_what_chunk_headers_claim():
    """Four headers claiming 256 MB each (52 bytes sent) grew a workstation by 1 GB before."""
    from trame.app import get_server

    async def scenario():
        server = get_server("hostile-chunks", client_type="vue3")
        server.controller.on_server_bind.add(lambda wslink_server: guard(wslink_server, "s"))
        ready = asyncio.get_running_loop().create_future()
        server.controller.on_server_ready.add(lambda **_: ready.done() or ready.set_result(True))
        server.start(port=0, exec_mode="task", open_browser=False, show_connection_info=False, disable_logging=True,
                     timeout=0)
        await ready
        async with ClientSession() as http:
            async with http.ws_connect(f"ws://127.0.0.1:{server.port}/ws", headers={SECRET_HEADER: "s"}) as socket:
                hello = msgpack.packb({"wslink": "1.0", "id": "system:c0:0", "method": "wslink.hello",
                                       "args": [{"secret": "wslink-secret"}], "kwargs": {}})
                await socket.send_bytes(_chunk(1, 0, len(hello), hello))
                assert (await socket.receive(timeout=5)).type == WSMsgType.BINARY  # the hello's answer
                before = _rss_mb()
                for message_id in range(100, 104):
                    await socket.send_bytes(_chunk(message_id, 0, CLAIMED_BYTES, b"x"))
                closing = await socket.receive(timeout=5)
                grown = _rss_mb() - before
        await server.stop()
        return closing, grown

    closing, grown_mb = asyncio.run(scenario())
    assert closing.type == WSMsgType.CLOSE and closing.data == 1009 and grown_mb < 50


def test_every_response_carries_the_security_headers(store, fake_processes):
    async def scenario():
        station = await _recording_station("s", [])
        async with TestClient(TestServer(_logged_in_portal(store, station).app())) as client:
            replies = {"login page": await client.get("/login"),
                       "not logged in": await client.get("/", allow_redirects=False),
                       "refused": await client.post("/somewhere")}
            await client.post("/login", data={"name": "ann", "password": "correct horse"}, allow_redirects=False)
            replies |= {"workstation page": await client.get("/"),
                        "report": await client.get("/reports/attempt-1-3.html")}
            too_big = await client.post("/login", data={"name": "ann", "password": "x" * (MAX_BODY_BYTES + 1)})
        await station.close()
        return replies, too_big.status

    replies, too_big = asyncio.run(scenario())
    assert too_big == 413
    for what, reply in replies.items():
        policy = reply.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "object-src 'none'" in policy, what
        assert reply.headers["X-Content-Type-Options"] == "nosniff" and reply.headers["Referrer-Policy"] == "no-referrer"
        framing = ("'self'", "SAMEORIGIN") if what == "report" else ("'none'", "DENY")
        assert policy.endswith(f"frame-ancestors {framing[0]}") and reply.headers["X-Frame-Options"] == framing[1], what


def test_an_imported_ct_with_labels_but_no_landmarks_gets_estimated_ones(small_spine):
    imported = Anatomy(ct=small_spine.ct, label_table=small_spine.label_table, labels=small_spine.labels)
    save_anatomy(imported, "web-imported-no-landmarks")
    check_patient(anatomy_folder("web-imported-no-landmarks"))  # serve starts with it
    anatomy, _ = Patients("web-imported-no-landmarks").of(library_scenarios()["ilesi-default"])
    assert "L4-L5.interlaminar_window.center" in anatomy.landmarks and "derived_landmarks" in anatomy.metadata


def test_serve_refuses_an_anatomy_with_neither_landmarks_nor_labels(small_spine):
    save_anatomy(Anatomy(ct=small_spine.ct, label_table=small_spine.label_table), "web-ct-only")
    folder = anatomy_folder("web-ct-only")
    with pytest.raises(SpinesimError, match="neither landmarks nor vertebra labels") as refused:
        check_patient(folder)
    assert str(folder) in str(refused.value)
    (folder / "anatomy.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SpinesimError, match="cannot read the anatomy's manifest"):
        check_patient(folder)
