"""The portal: the one address users open. It logs them in and hands each user a workstation of their own.

Why a portal and one process per user: a trame server holds one state shared by every browser
connected to it (trame's own start-up note: "for multi-users you need to use and configure a
launcher"). Two trainees on one trame process would see, and change, each other's attempt. So the
portal (plain aiohttp, light: no anatomy in it) forks a workstation process
(:mod:`frontends.web.workstation`) per logged-in user from a zygote that has imported it once
(:mod:`frontends.web.zygote`: the imported modules' pages are shared) on a free loopback port and forwards that
user's HTTP requests and WebSocket to it, by the session cookie. Workstations are never reachable
from the network, only through the portal, and only by their user.

Login: whenever the portal binds beyond the loopback interface, every user logs in with a
password (scrypt-hashed in the store) and the portal refuses to start while nobody can log in. On
127.0.0.1 the person at the machine works as the passwordless local trainee unless they log in.

Workstation processes die with the portal (the zygote exits when the portal does, and each workstation
has ``PR_SET_PDEATHSIG`` on its parent, the zygote, on Linux), so a killed portal leaves no orphan behind; a restarted portal starts fresh ones, and a trainee resumes an
interrupted attempt from the store.

Hardening:

- **Workstation secret.** A loopback port is reachable by every local system user, so each
  workstation gets a random secret (32 bytes, in its environment, which only its owner can read)
  and refuses any request or WebSocket that does not carry it in the :data:`SECRET_HEADER` header;
  the portal adds it to everything it forwards.
- **Login throttling.** Failed logins are logged (user name and client address) and counted per
  user name and per address in a sliding window (:class:`LoginThrottle`); past the limit that name
  or address is refused (HTTP 429) until the window has moved on. A try is counted when it is
  admitted, so concurrent guesses cannot outrun the count. Behind a reverse proxy every client
  shares the proxy's address: set the per-address limit accordingly.
- **Sizes and rates.** Request bodies are bounded (:data:`MAX_BODY_BYTES`); a browser's WebSocket
  frames are bounded, and the size each wslink chunk header declares for its message is checked
  before the frame is forwarded (:class:`MessageGate`: a header claiming 256 MB would otherwise make
  the workstation allocate it); a browser sending faster than :data:`MESSAGES_PER_S` is slowed down.
- **Security headers** on every response (:func:`security_headers`): a Content-Security-Policy that
  allows what trame needs (its inline loader script, Vue compiling the page's templates in the
  browser, inline styles, images as data URLs, its WebSocket to this origin) and nothing from other
  origins; no framing by other sites; no MIME sniffing; no referrer.

Warm spares (``--spare N``, default 1): loading a patient and compiling the imaging kernels takes a
workstation several seconds, so the portal keeps N workstations warmed up with no user yet. A login
takes one (it is told its user and port on its standard input and starts serving at once) and a new
spare warms up in its place once no other workstation is starting.
"""

from __future__ import annotations

import asyncio
import atexit
import html
import ipaddress
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, WSCloseCode, WSMsgType, web

from anatomy_models.errors import SpinesimError
from frontends.store import Store, User
from frontends.web.inputs import MAX_MESSAGE_BYTES
from frontends.web.kernels import start_compiling
from frontends.web.portal_link import SECRET_HEADER
from frontends.web.upload import Uploads
from frontends.web.zygote import ForkedWorkstation, start_workstation

COOKIE = "spinesim_session"
log = logging.getLogger("spinesim.portal")
# Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded by a proxy.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}
# How long a request waits for a warm spare that was just given its user to start serving, s (it
# builds its page in ~0.3 s).
READY_WAIT_S = 3.0
# How long the portal, asked to stop (Ctrl-C, SIGTERM), waits for its workstations to end before it kills
# them, s: every action is in the store before the trainee sees it, so a killed workstation loses nothing.
STOP_WAIT_S = 1.5
# Limits on what a browser sends. Nothing the app sends is large: a login form, page requests without a
# body, and WebSocket messages of a few hundred bytes (a click, a changed field).
MAX_BODY_BYTES = 64 * 1024
MAX_PASSWORD_CHARS = 1024
# WebSocket messages from one browser: a sustained rate and a burst (a slider dragged sends ~30 a second).
MESSAGES_PER_S = 100.0
MESSAGE_BURST = 300
# A wslink chunk header (trame's WebSocket protocol): message id, offset, total size; uint32 each, little-endian.
WSLINK_HEADER_BYTES = 12
# What trame's page needs (its inline loader, Vue compiling templates: 'unsafe-eval'; the report's
# inline viewer script), from this origin only; data: images are the monitors' JPEGs.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
                           "connect-src 'self'; frame-src 'self'; worker-src 'self' blob:; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'")


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
    scenario_folders: list[str] = field(default_factory=list)  # served besides the library (--scenarios)
    require_login: bool = False  # also on localhost (a shared machine)
    spare: int = 1  # workstations kept warm for the next logins

    @property
    def login_required(self) -> bool:
        return self.require_login or not is_loopback(self.host)


@dataclass
class WorkstationProcess:
    """A workstation process: its secret, and once it has a user, its user and loopback port.

    A spare (``user`` None) writes ``warm`` to the pipe ``warm_pipe`` when its patient is loaded
    and waits for its assignment (a JSON line ``{"user_id", "port"}``) on its standard input.
    """

    process: ForkedWorkstation
    secret: str
    user: User | None = None
    port: int | None = None
    warm_pipe: int | None = None
    warm: bool = False
    ready: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def is_warm(self) -> bool:
        """Whether a spare has said it is warm (reads its pipe without blocking)."""
        if not self.warm and self.warm_pipe is not None:
            try:
                self.warm = b"warm" in os.read(self.warm_pipe, 64)
            except BlockingIOError:
                pass
        return self.warm

    def assign(self, user: User, port: int) -> None:
        """Give a spare its user and the port to serve on."""
        self.user, self.port = user, port
        self.process.stdin.write((json.dumps({"user_id": user.id, "port": port}) + "\n").encode("ascii"))
        self.process.stdin.flush()

    def close(self) -> None:
        """Stop the process (if it runs) and release the pipes."""
        if self.alive:
            self.process.terminate()
        if self.warm_pipe is not None:
            os.close(self.warm_pipe)
            self.warm_pipe = None


class LoginThrottle:
    """Failed logins in a sliding window, per user name and per client address.

    A login is counted as failed the moment it is admitted, in the same step as the check (under a
    lock), and uncounted once its password proved right: so concurrent guesses cannot all pass the
    check while the first ones are still being hashed (scrypt takes ~50 ms). The count lives in the
    portal's memory (one portal process serves a site; a restart forgets it).

    Parameters
    ----------
    per_name, per_address : int
        Failures allowed within the window for one user name, and from one address.
    window_s : float
        Length of the window, s.

    Examples
    --------
    >>> throttle = LoginThrottle(per_name=2, per_address=10, window_s=60)
    >>> throttle.admit("ann", "10.0.0.9", now=0), throttle.admit("ann", "10.0.0.9", now=1)
    (0.0, 0.0)
    >>> throttle.admit("ann", "10.0.0.7", now=2), throttle.admit("bob", "10.0.0.9", now=2)
    (58.0, 0.0)
    >>> throttle.succeeded("bob", "10.0.0.9", at=2)  # bob's password was right: not a failure
    >>> throttle.admit("ann", "10.0.0.7", now=61)
    0.0
    """

    def __init__(self, per_name: int = 5, per_address: int = 20, window_s: float = 600.0) -> None:
        self.limits = {"name": per_name, "address": per_address}
        self.window_s = float(window_s)
        self._failures: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def _retry_after(self, name: str, address: str, now: float) -> float:
        wait = 0.0
        for key in (("name", name), ("address", address)):
            times = self._recent(key, now)
            if len(times) >= self.limits[key[0]]:
                wait = max(wait, times[len(times) - self.limits[key[0]]] + self.window_s - now)
        return wait

    def admit(self, name: str, address: str, now: float | None = None) -> float:
        """Seconds until ``name`` may try again from ``address``; 0 if it may now, and then this try
        is counted as failed (at ``now``) until :meth:`succeeded` says otherwise."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._retry_after(name, address, now)
            if wait > 0:
                return wait
            if len(self._failures) > 100_000:  # a flood of made-up names: forget what has expired
                for key in list(self._failures):
                    self._recent(key, now)
            for key in (("name", name), ("address", address)):
                self._failures.setdefault(key, deque()).append(now)
            return 0.0

    def succeeded(self, name: str, address: str, at: float) -> None:
        """Uncount the try admitted at ``at``: its password was right."""
        with self._lock:
            for key in (("name", name), ("address", address)):
                times = self._failures.get(key)
                if times is not None and at in times:
                    times.remove(at)


class MessageGate:
    """What one browser may send over its WebSocket, checked frame by frame before it is forwarded.

    trame's protocol (wslink) cuts each message into chunks, each with a header declaring the whole
    message's size; the workstation allocates that size at the first chunk. So each binary frame's
    header is read here and refused when its message, or all messages still unfinished together,
    would exceed ``max_bytes``, or when the chunk does not fit its message. :meth:`pace` slows a
    browser that sends more than ``per_s`` messages a second (after a burst of ``burst``).

    Examples
    --------
    >>> gate = MessageGate(max_bytes=1000)
    >>> header = lambda id, offset, size: b"".join(n.to_bytes(4, "little") for n in (id, offset, size))
    >>> gate.refusal(header(1, 0, 4) + b"abcd") is None
    True
    >>> gate.refusal(header(2, 0, 256 * 1024**2))
    'a message declaring 268435456 bytes (the limit is 1000)'
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES, per_s: float = MESSAGES_PER_S,
                 burst: int = MESSAGE_BURST) -> None:
        self.max_bytes, self.per_s, self.burst = max_bytes, per_s, burst
        self._pending: dict[int, list[int]] = {}  # message id -> [declared size, bytes received]
        self._tokens, self._last = float(burst), time.monotonic()

    def refusal(self, frame: bytes) -> str | None:
        """Why the binary ``frame`` may not be forwarded, or None if it may."""
        if len(frame) < WSLINK_HEADER_BYTES:
            return f"a frame of {len(frame)} bytes, shorter than its header"
        message_id, offset, size = (int.from_bytes(frame[i:i + 4], "little") for i in (0, 4, 8))
        content = len(frame) - WSLINK_HEADER_BYTES
        if size > self.max_bytes:
            return f"a message declaring {size} bytes (the limit is {self.max_bytes})"
        pending = self._pending.get(message_id)
        if pending is None:
            unfinished = sum(declared for declared, _ in self._pending.values())
            if unfinished + size > self.max_bytes:
                return f"unfinished messages declaring {unfinished + size} bytes (the limit is {self.max_bytes})"
            pending = self._pending[message_id] = [size, 0]
        if pending[0] != size or offset + content > size:
            return f"a chunk that does not fit its message (offset {offset}, {content} bytes, message of {size})"
        pending[1] += content
        if pending[1] >= size:
            del self._pending[message_id]
        return None

    async def pace(self) -> None:
        """Wait until the next message may go (a token bucket: ``burst`` at once, ``per_s`` a second)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens < 1.0:
            await asyncio.sleep((1.0 - self._tokens) / self.per_s)
            self._tokens, self._last = 1.0, time.monotonic()
        self._tokens -= 1.0


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Set the security headers on every response before it is sent (pages, forwarded replies,
    errors, WebSocket handshakes). Only the workstation's reports may be framed, by the page itself."""
    framing = "'self'" if request.path.startswith("/reports/") else "'none'"
    response.headers["Content-Security-Policy"] = f"{CONTENT_SECURITY_POLICY}; frame-ancestors {framing}"
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if framing == "'self'" else "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"


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
        self.spares: list[WorkstationProcess] = []
        # Workstations asked to stop (their user logged out) that may still run: a worker busy when SIGTERM came is
        # waited for as the process exits (a report being written, an image being made). The portal's stop ends
        # them with the others (multiprocessing's exit handler would wait for each with no limit: a workstation
        # stuck so kept a stopped portal up until it was killed, after ten logins and logouts at load 37).
        self.stopping: list[WorkstationProcess] = []
        self.throttle = LoginThrottle()
        self.sockets: set[web.WebSocketResponse] = set()  # browsers' open WebSockets, closed on stopping
        self.client: ClientSession | None = None
        self._keeper: asyncio.Task | None = None
        self._compiling: subprocess.Popen | None = None  # the ultrasound kernels' compile (frontends.web.kernels)
        # The workstations' HTML reports, one subfolder each; removed with the portal (a killed
        # workstation cannot clean up after itself).
        self.reports = tempfile.TemporaryDirectory(prefix="spinesim-reports-")
        self.uploads = Uploads(self._user_and_role)  # an instructor's own patient's CT (frontends/web/upload.py)

    # ------------------------------------------------------------------ application
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_get("/logout", self.logout)
        app.router.add_get("/portal/status", self.status)
        app.router.add_get("/portal/health", self.health)
        self.uploads.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_response_prepare.append(security_headers)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app) -> None:
        self.client = ClientSession(timeout=ClientTimeout(total=None, sock_connect=5))
        # Before any workstation: each that needs the ultrasound kernels meanwhile then waits for this compile.
        self._compiling = start_compiling(Path(self.reports.name), self._workstation_settings(),
                                          self._logs() / "ultrasound-kernels.log")
        if not self.config.login_required:
            # The person at this machine should not wait for the patient to load after opening the page.
            self.workstation_of(self.store.local_trainee())
        self._keeper = asyncio.ensure_future(self._keep_spares())
        self._keeper.add_done_callback(lambda task: task.cancelled() or task.exception() is None or log.error(
            "keeping spare workstations failed", exc_info=task.exception()))

    async def _on_shutdown(self, _app) -> None:
        """Close the browsers' WebSockets as the portal stops: aiohttp otherwise waits for each forwarding
        handler to end (60 s) while a tab stays open, and the tab could still take shots meanwhile."""
        for socket_ in list(self.sockets):
            await socket_.close(code=WSCloseCode.GOING_AWAY, message=b"the simulator is stopping")

    async def _on_cleanup(self, _app) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
        if self._compiling is not None and self._compiling.poll() is None:
            self._compiling.kill()  # numba writes each cache file whole: the next start compiles what is missing
            self._compiling.wait()
        self.uploads.close()
        stations = [*self.workstations.values(), *self.spares, *self.stopping]
        for station in stations:
            station.close()
        # All asked at once, then one shared deadline: a workstation still draining its connections
        # would otherwise keep the portal up for its whole graceful shutdown.
        deadline = time.monotonic() + STOP_WAIT_S
        for station in stations:
            try:
                station.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                station.process.kill()
                station.process.wait()
        if self.client is not None:
            await self.client.close()
        self.reports.cleanup()
        self.store.engine.dispose()  # closed here: the portal exits without the interpreter's teardown (serve)

    # ------------------------------------------------------------------ login
    async def login_page(self, request: web.Request, message: str = "") -> web.Response:
        return web.Response(text=_login_html(message, local=not self.config.login_required), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("local") and not self.config.login_required:
            return self._logged_in(self.store.local_trainee())
        name, address = str(form.get("name", ""))[:64], request.remote or "unknown"
        admitted = time.monotonic()
        wait = self.throttle.admit(name, address, admitted)
        if wait > 0:
            log.warning("login refused for user %r from %s: too many failed logins", name, address)
            response = await self.login_page(request, f"Too many failed logins. Try again in {wait / 60:.0f} min.")
            response.set_status(429)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        user = await asyncio.get_running_loop().run_in_executor(
            None, self.store.authenticate, name, str(form.get("password", ""))[:MAX_PASSWORD_CHARS])
        if user is None:
            log.warning("failed login for user %r from %s", name, address)
            await asyncio.sleep(0.5)  # slows password guessing
            return await self.login_page(request, "Unknown user or wrong password.")
        self.throttle.succeeded(name, address, admitted)
        log.info("user %r logged in from %s", user.name, address)
        return self._logged_in(user)

    def _logged_in(self, user: User) -> web.Response:
        token = secrets.token_urlsafe(32)
        self.sessions[token] = user.id
        self.workstation_of(user)
        response = _redirect("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        user_id = self.sessions.pop(request.cookies.get(COOKIE, ""), None)
        if user_id is not None and user_id not in self.sessions.values():
            station = self.workstations.pop(user_id, None)
            if station is not None:
                station.close()
                self.stopping.append(station)
        response = _redirect("/login")
        response.del_cookie(COOKIE, path="/")
        return response

    def user_of(self, request: web.Request) -> int | None:
        return self.sessions.get(request.cookies.get(COOKIE, ""))

    # ------------------------------------------------------------------ workstations
    def _user_and_role(self, request: web.Request) -> tuple[int, str] | None:
        user_id = self.user_of(request)
        return None if user_id is None else (user_id, self.store.user_by_id(user_id).role)

    def workstation_of(self, user: User) -> WorkstationProcess:
        """The user's workstation: the one they have, else a warm spare, else a new process."""
        station = self.workstations.get(user.id)
        if station is not None and station.alive:
            return station
        if station is not None:
            station.close()
        self._drop_dead_spares()
        spare = max(self.spares, key=lambda candidate: candidate.is_warm(), default=None)
        if spare is not None:
            self.spares.remove(spare)
            spare.assign(user, free_port())
            station = spare
        else:
            station = self._spawn(user)
        self.workstations[user.id] = station
        return station

    def _workstation_settings(self) -> dict:
        """What every workstation of this portal is told (:class:`frontends.web.workstation.WorkstationConfig`)."""
        return {"db_url": self.db_url, "anatomy": self.config.anatomy, "scenario": self.config.scenario,
                "scenario_folders": self.config.scenario_folders, "reports_dir": self.reports.name}

    @staticmethod
    def _logs() -> Path:
        from anatomy_models.home import spinesim_home

        logs = spinesim_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs

    def _spawn(self, user: User | None) -> WorkstationProcess:
        """A new workstation process: for ``user`` on a free port, or a spare (``user`` None)."""
        secret = secrets.token_urlsafe(32)
        settings = self._workstation_settings() | {"secret": secret}
        port, warm_read, warm_write = None, None, None
        if user is not None:
            port = free_port()
            settings |= {"user_id": user.id, "port": port}
        else:
            warm_read, warm_write = os.pipe()
            os.set_blocking(warm_read, False)
            settings["warm_fd"] = warm_write
        process = start_workstation(settings, self._logs() / f"workstation-{user.name if user else 'spare'}.log",
                                    spare=user is None, warm_fd=warm_write)
        if warm_write is not None:
            os.close(warm_write)
        return WorkstationProcess(process, secret, user, port, warm_read)

    def _drop_dead_spares(self) -> None:
        for spare in [spare for spare in self.spares if not spare.alive]:
            log.warning("a spare workstation stopped (exit status %s); see its log", spare.process.returncode)
            spare.close()
            self.spares.remove(spare)

    async def _keep_spares(self) -> None:
        while True:
            await self._tend_spares()
            await asyncio.sleep(0.5)

    async def _tend_spares(self) -> None:
        """Keep ``config.spare`` spares, starting a new one only when no workstation is starting (a
        starting spare would slow a user's starting workstation on a small server)."""
        self._drop_dead_spares()
        self.stopping = [station for station in self.stopping if station.alive]  # collects those that ended
        starting = [station for station in self.workstations.values() if station.alive and not station.ready]
        for station in starting:
            await self._is_ready(station)
        starting = [station for station in starting if not station.ready] + [s for s in self.spares if not s.is_warm()]
        if len(self.spares) < self.config.spare and not starting:
            self.spares.append(self._spawn(None))

    async def _is_ready(self, station: WorkstationProcess) -> bool:
        if station.ready:
            return True
        try:
            async with self.client.get(f"http://127.0.0.1:{station.port}/", timeout=ClientTimeout(total=2),
                                       headers={SECRET_HEADER: station.secret}) as reply:
                station.ready = reply.status == 200
        except (OSError, asyncio.TimeoutError):
            station.ready = False
        return station.ready

    async def _ready_soon(self, station: WorkstationProcess) -> bool:
        """Whether the workstation serves, waiting a moment for one that is only building its page (a
        warm spare just given its user): that spares the browser a round through the waiting page."""
        deadline = time.monotonic() + (READY_WAIT_S if station.warm else 0.0)
        while not await self._is_ready(station) and time.monotonic() < deadline and station.alive:
            await asyncio.sleep(0.05)
        return station.ready

    async def health(self, request: web.Request) -> web.Response:
        """Counts only (no names): spares and how many are warm, workstations and how many serve; for
        this machine only (monitoring, benchmarks), not for the network."""
        if not is_loopback(request.remote or ""):
            raise web.HTTPNotFound()
        return web.json_response({"spares": len(self.spares), "spares_warm": sum(s.is_warm() for s in self.spares),
                                  "workstations": len(self.workstations),
                                  "workstations_ready": sum(s.ready for s in self.workstations.values())})

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
        if not await self._ready_soon(station):
            if request.path == "/":
                return web.Response(text=_WAITING_HTML, content_type="text/html")
            raise web.HTTPServiceUnavailable(text="the workstation is starting")
        target = f"http://127.0.0.1:{station.port}{request.rel_url}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_websocket(request, target.replace("http://", "ws://", 1), station.secret)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in _HOP_BY_HOP and k.lower() not in ("cookie", SECRET_HEADER.lower())}
        headers[SECRET_HEADER] = station.secret
        async with self.client.request(request.method, target, headers=headers, data=await request.read(),
                                       allow_redirects=False) as reply:
            body = await reply.read()
            out_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=reply.status, body=body, headers=out_headers)

    async def _forward_websocket(self, request: web.Request, target: str, secret: str) -> web.WebSocketResponse:
        browser = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES + WSLINK_HEADER_BYTES, autoping=True)
        await browser.prepare(request)
        self.sockets.add(browser)
        try:
            await self._relay(request, browser, target, secret)
        finally:
            self.sockets.discard(browser)
        return browser

    async def _relay(self, request: web.Request, browser: web.WebSocketResponse, target: str, secret: str) -> None:
        """Relay ``browser``'s WebSocket to and from the workstation's until either side closes."""
        # The workstation's side is trusted (its frames are wslink's own chunks of at most 4 MB).
        async with self.client.ws_connect(target, max_msg_size=0, autoping=True,
                                          headers={SECRET_HEADER: secret}) as station:
            tasks = [asyncio.ensure_future(self._pump_browser(request, browser, station)),
                     asyncio.ensure_future(_pump(station, browser))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        await browser.close()

    async def _pump_browser(self, request: web.Request, browser: web.WebSocketResponse, station) -> None:
        """Forward the browser's messages to its workstation, each checked by a :class:`MessageGate`;
        a refused frame closes the socket (the page reconnects) and is logged."""
        gate = MessageGate()
        async for message in browser:
            if message.type == WSMsgType.ERROR:  # e.g. a frame over the size limit: aiohttp closes with 1009
                log.warning("WebSocket of user id %s from %s closed: %s", self.user_of(request), request.remote,
                            browser.exception())
                break
            refusal = gate.refusal(message.data) if message.type == WSMsgType.BINARY else None
            if refusal is not None:
                log.warning("WebSocket of user id %s from %s closed: it sent %s", self.user_of(request),
                            request.remote, refusal)
                await browser.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"message too big")
                break
            await gate.pace()
            if not await _send(station, message):
                break


async def _pump(source, sink) -> None:
    """Forward WebSocket messages from ``source`` to ``sink`` until either closes."""
    async for message in source:
        if not await _send(sink, message):
            break


async def _send(sink, message) -> bool:
    """Send a text or binary ``message`` on; False when it is a close or an error (stop forwarding)."""
    if message.type == WSMsgType.TEXT:
        await sink.send_str(message.data)
    elif message.type == WSMsgType.BINARY:
        await sink.send_bytes(message.data)
    elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return False
    return True


def _redirect(location: str) -> web.Response:
    """A 302 to ``location`` that can carry cookies (aiohttp no longer lets a handler return an HTTPFound)."""
    return web.Response(status=302, headers={"Location": location})


def serve(config: PortalConfig) -> None:
    """Run the portal until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    portal = Portal(config)
    where = f"http://{config.host}:{config.port}/"
    mode = "login required" if config.login_required else "local trainee, no login"
    print(f"spinesim serving on {where} ({mode}); database {portal.store.engine.url.render_as_string(hide_password=True)}",
          flush=True)
    # The browsers' WebSockets are closed on stopping (Portal._on_shutdown); a plain request still being
    # forwarded gets a moment, not aiohttp's default minute.
    web.run_app(portal.app(), host=config.host, port=config.port, print=None, access_log=None,
                shutdown_timeout=STOP_WAIT_S)
    exit_without_teardown()


def exit_without_teardown() -> None:
    """End the stopped portal now: its exit handlers run (multiprocessing's, which removes the zygote's folder;
    logging's), then the process exits without the interpreter's teardown.

    By then the portal has closed everything it opened (:meth:`Portal._on_cleanup`: the workstations ended, the
    database and the reports' folder closed). What stopping had left is the interpreter freeing every imported
    module's objects one by one: strace of a portal stopped with a tab open at load ~12 on 2 cores showed no system
    call for 3.8 s between the database's close and the memory being handed back (0.8 s more), most of the 6.6 s
    the stop took (issue 18 asks for 5; 13.1 s was seen at load 17-24). A forked workstation already ends this way
    (multiprocessing's children call ``os._exit``)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


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
