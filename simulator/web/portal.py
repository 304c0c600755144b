"""The portal: the one address users open. It logs them in and hands each user a workstation of their own.

Why a portal and one process per user: a trame server holds one state shared by every browser
connected to it (trame's own start-up note: "for multi-users you need to use and configure a
launcher"). Two trainees on one trame process would see, and change, each other's attempt. So the
portal (plain aiohttp, light: no anatomy in it) starts a workstation process
(:mod:`simulator.web.workstation`) per logged-in user on a free loopback port and forwards that
user's HTTP requests and WebSocket to it, by the session cookie. Workstations are never reachable
from the network, only through the portal, and only by their user.

Login: whenever the portal binds beyond the loopback interface, every user logs in with a
password (scrypt-hashed in the store) and the portal refuses to start while nobody can log in. On
127.0.0.1 the person at the machine works as the passwordless local trainee unless they log in.

Workstation processes die with the portal (``PR_SET_PDEATHSIG`` on Linux), so a killed portal
leaves no orphan behind; a restarted portal starts fresh ones, and a trainee resumes an
interrupted attempt from the store.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from anatomy_models.errors import SpinesimError
from simulator.store import Store, User

COOKIE = "spinesim_session"
# Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded by a proxy.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}
# How long a workstation may take to load its patient and compile its kernels, s.
STARTUP_TIMEOUT_S = 300.0


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def is_loopback(host: str) -> bool:
    """True if ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("10.1.2.3")
    (True, True, False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PortalConfig:
    """How ``spinesim serve`` was started."""

    host: str = "127.0.0.1"
    port: int = 8080
    db_url: str | None = None
    anatomy: str | None = None
    scenario: str | None = None
    require_login: bool = False  # also on localhost (a shared machine)

    @property
    def login_required(self) -> bool:
        return self.require_login or not is_loopback(self.host)


@dataclass
class WorkstationProcess:
    """A user's workstation: its process and loopback port."""

    user: User
    port: int
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    ready: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Portal:
    """The aiohttp application (see the module docstring)."""

    def __init__(self, config: PortalConfig) -> None:
        self.config = config
        self.store = Store(config.db_url)
        self.db_url = self.store.url
        if config.login_required and not self.store.login_users():
            where = "beyond this machine" if not is_loopback(config.host) else "with --require-login"
            raise SpinesimError(f"the simulator would listen on {config.host} {where}, but no user can log in", hint="add one first: `spinesim users add NAME --role instructor` (and "
                                "trainees with --role trainee), or serve on 127.0.0.1")
        self.sessions: dict[str, int] = {}  # cookie token -> user id
        self.workstations: dict[int, WorkstationProcess] = {}
        self.client: ClientSession | None = None

    # ------------------------------------------------------------------ application
    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024**2)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_get("/logout", self.logout)
        app.router.add_get("/portal/status", self.status)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app) -> None:
        self.client = ClientSession(timeout=ClientTimeout(total=None, sock_connect=5))
        if not self.config.login_required:
            # The person at this machine should not wait for the patient to load after opening the page.
            self.workstation_of(self.store.local_trainee())

    async def _on_cleanup(self, _app) -> None:
        for station in self.workstations.values():
            if station.alive:
                station.process.terminate()
        for station in self.workstations.values():
            try:
                station.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                station.process.kill()
        if self.client is not None:
            await self.client.close()

    # ------------------------------------------------------------------ login
    async def login_page(self, request: web.Request, message: str = "") -> web.Response:
        return web.Response(text=_login_html(message, local=not self.config.login_required), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("local") and not self.config.login_required:
            user = self.store.local_trainee()
        else:
            user = await asyncio.get_running_loop().run_in_executor(
                None, self.store.authenticate, str(form.get("name", "")), str(form.get("password", "")))
            if user is None:
                await asyncio.sleep(0.5)  # slows password guessing
                return await self.login_page(request, "Unknown user or wrong password.")
        return self._logged_in(user)

    def _logged_in(self, user: User) -> web.Response:
        token = secrets.token_urlsafe(32)
        self.sessions[token] = user.id
        self.workstation_of(user)
        response = web.HTTPFound("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        user_id = self.sessions.pop(request.cookies.get(COOKIE, ""), None)
        if user_id is not None and user_id not in self.sessions.values():
            station = self.workstations.pop(user_id, None)
            if station is not None and station.alive:
                station.process.terminate()
        response = web.HTTPFound("/login")
        response.del_cookie(COOKIE, path="/")
        return response

    def user_of(self, request: web.Request) -> int | None:
        return self.sessions.get(request.cookies.get(COOKIE, ""))

    # ------------------------------------------------------------------ workstations
    def workstation_of(self, user: User) -> WorkstationProcess:
        station = self.workstations.get(user.id)
        if station is not None and station.alive:
            return station
        port = free_port()
        settings = {"db_url": self.db_url, "user_id": user.id, "port": port, "anatomy": self.config.anatomy,
                    "scenario": self.config.scenario}
        from anatomy_models.home import spinesim_home

        logs = spinesim_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"workstation-{user.name}.log", "ab")
        environment = dict(os.environ, SPINESIM_WORKSTATION=json.dumps(settings), TRAME_SERVER="1")
        process = subprocess.Popen([sys.executable, "-m", "simulator.web.workstation"], env=environment,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        station = WorkstationProcess(user, port, process)
        self.workstations[user.id] = station
        return station

    async def _is_ready(self, station: WorkstationProcess) -> bool:
        if station.ready:
            return True
        try:
            async with self.client.get(f"http://127.0.0.1:{station.port}/", timeout=ClientTimeout(total=2)) as reply:
                station.ready = reply.status == 200
        except (OSError, asyncio.TimeoutError):
            station.ready = False
        return station.ready

    async def status(self, request: web.Request) -> web.Response:
        user_id = self.user_of(request)
        station = self.workstations.get(user_id) if user_id is not None else None
        if station is None:
            return web.json_response({"ready": False, "error": "not logged in"}, status=401)
        if not station.alive:
            return web.json_response({"ready": False, "error": "the workstation stopped; see its log"}, status=500)
        return web.json_response({"ready": await self._is_ready(station)})

    # ------------------------------------------------------------------ forwarding
    async def forward(self, request: web.Request) -> web.StreamResponse:
        user_id = self.user_of(request)
        if user_id is None:
            if self.config.login_required or request.path != "/":
                raise web.HTTPFound("/login") if request.method == "GET" else web.HTTPUnauthorized()
            return self._logged_in(self.store.local_trainee())
        station = self.workstations.get(user_id)
        if station is None or not station.alive:
            station = self.workstation_of(self.store.user_by_id(user_id))
        if not await self._is_ready(station):
            if request.path == "/":
                return web.Response(text=_WAITING_HTML, content_type="text/html")
            raise web.HTTPServiceUnavailable(text="the workstation is starting")
        target = f"http://127.0.0.1:{station.port}{request.rel_url}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request, target.replace("http://", "ws://", 1))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "cookie"}
        async with self.client.request(request.method, target, headers=headers, data=await request.read(),
                                       allow_redirects=False) as reply:
            body = await reply.read()
            out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=reply.status, body=body, headers=out_headers)

    async def _forward_websocket(self, request: web.Request, target: str) -> web.WebSocketResponse:
        browser = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await browser.prepare(request)
        async with self.client.ws_connect(target, max_msg_size=0, autoping=True) as station:
            async def pump(source, sink) -> None:
                async for message in source:
                    if message.type == WSMsgType.TEXT:
                        await sink.send_str(message.data)
                    elif message.type == WSMsgType.BINARY:
                        await sink.send_bytes(message.data)
                    elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break

            tasks = [asyncio.ensure_future(pump(browser, station)), asyncio.ensure_future(pump(station, browser))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        await browser.close()
        return browser


def serve(config: PortalConfig) -> None:
    """Run the portal until interrupted."""
    portal = Portal(config)
    where = f"http://{config.host}:{config.port}/"
    mode = "login required" if config.login_required else "local trainee, no login"
    print(f"spinesim serving on {where} ({mode}); database {portal.store.engine.url.render_as_string(hide_password=True)}",
          flush=True)
    web.run_app(portal.app(), host=config.host, port=config.port, print=None, access_log=None)


# --------------------------------------------------------------------------- pages
_PAGE_STYLE = """
body { margin: 0; font-family: Roboto, 'Segoe UI', Arial, sans-serif; background: #eceff1; color: #263238; }
header { background: #263238; color: #eceff1; padding: 14px 24px; font-weight: 700; letter-spacing: .06em; }
main { max-width: 380px; margin: 72px auto; background: #fff; border-radius: 8px; padding: 28px 32px;
       box-shadow: 0 2px 12px rgba(0,0,0,.12); }
h1 { font-size: 20px; font-weight: 500; margin: 0 0 18px; }
label { display: block; font-size: 12px; color: #546e7a; margin: 12px 0 4px; text-transform: uppercase;
        letter-spacing: .08em; }
input { width: 100%; box-sizing: border-box; padding: 10px; border: 1px solid #b0bec5; border-radius: 4px;
        font-size: 15px; }
button { margin-top: 20px; width: 100%; padding: 11px; border: 0; border-radius: 4px; background: #1565c0;
         color: #fff; font-size: 15px; cursor: pointer; }
button.secondary { background: #eceff1; color: #263238; margin-top: 10px; }
.error { color: #c62828; font-size: 14px; margin-bottom: 6px; }
.note { font-size: 13px; color: #607d8b; margin-top: 16px; }
"""


def _login_html(message: str, *, local: bool) -> str:
    error = f'<div class="error" id="login-error">{html.escape(message)}</div>' if message else ""
    local_form = ('<form method="post" action="/login"><input type="hidden" name="local" value="1">'
                  '<button class="secondary" id="local-login" type="submit">Continue as the local trainee</button>'
                  '</form>') if local else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>spinesim · log in</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_PAGE_STYLE}</style></head>
<body><header>spinesim</header><main><h1>Log in</h1>{error}
<form method="post" action="/login">
<label for="name">User</label><input id="name" name="name" autocomplete="username" autofocus required>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button id="login" type="submit">Log in</button></form>{local_form}
<div class="note">Image-guided spine injection simulator. Attempts are saved as you work.</div></main></body></html>"""


_WAITING_HTML = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>spinesim · starting</title>
<style>{_PAGE_STYLE}</style></head><body><header>spinesim</header><main><h1>Preparing your workstation</h1>
<div id="waiting">Loading the patient and the imaging chain…</div><div class="note" id="waiting-error"></div></main>
<script>
async function poll() {{
  try {{
    const reply = await fetch('/portal/status', {{cache: 'no-store'}});
    const status = await reply.json();
    if (status.ready) {{ location.reload(); return; }}
    if (status.error) {{ document.getElementById('waiting-error').textContent = status.error; }}
  }} catch (e) {{}}
  setTimeout(poll, 400);
}}
poll();
</script></body></html>"""
