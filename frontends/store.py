"""The attempt store: users, their attempts, and every action of every attempt, in a SQL database.

SQLite by default (``$SPINESIM_HOME/spinesim.db``); any SQLAlchemy URL works, so a department
server can use PostgreSQL (``postgresql://user@host/spinesim``). The schema uses only portable
column types (integers, text, floats, timestamps with time zone).

The database is the one source of truth for an attempt made in the web app: each action is
committed (one transaction, durable before :meth:`Store.append_action` returns) before the trainee's
screen shows its result. The JSON Lines log other tools read (``spinesim run``, scoring) is written
from these rows by :meth:`Store.log_text`, with the same header and records a
:class:`simulator.session.fold.Session` writes; it is never edited by hand, so the two cannot disagree.

Passwords are stored as scrypt hashes (``hashlib.scrypt``, n=2^14, r=8, p=1, 16-byte random salt
per user, OWASP's minimum scrypt setting), compared in constant time.

Examples
--------
>>> store = Store("sqlite://")                       # an in-memory database
>>> store.add_user("ada", "instructor", "correct horse").role
'instructor'
>>> store.authenticate("ada", "correct horse").name, store.authenticate("ada", "wrong") is None
('ada', True)
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from sqlalchemy import (DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine, event,
                        func, select)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from anatomy_models.errors import SpinesimError
from simulator.session.actions import LOG_FORMAT_VERSION

Role = Literal["trainee", "instructor"]
ROLES: tuple[str, ...] = ("trainee", "instructor")
# The passwordless user of a simulator bound to localhost (one trainee at the machine).
LOCAL_TRAINEE = "local"
MIN_PASSWORD_LENGTH = 8
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_url() -> str:
    """``sqlite:///$SPINESIM_HOME/spinesim.db``."""
    from anatomy_models.home import spinesim_home

    return f"sqlite:///{spinesim_home() / 'spinesim.db'}"


# --------------------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    """An scrypt hash of ``password`` with a fresh random salt: ``scrypt$n$r$p$salt$hash`` (base64).

    Examples
    --------
    >>> stored = hash_password("s3cret-pass")
    >>> stored.startswith("scrypt$16384$8$1$"), verify_password("s3cret-pass", stored)
    (True, True)
    >>> hash_password("s3cret-pass") == stored            # another salt, another hash
    False
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` hashes to ``stored`` (False for a user without a password)."""
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                  p=int(p), dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def check_user_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise SpinesimError(f"invalid user name {name!r}",
                            hint="use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise SpinesimError(f"the password is too short ({len(password or '')} characters)",
                            hint=f"use at least {MIN_PASSWORD_LENGTH} characters")
    return password


# --------------------------------------------------------------------------- schema
class _Base(DeclarativeBase):
    pass


class _User(_Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Attempt(_Base):
    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    scenario_id: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # in_progress | finished
    # Attempt time of the last action (s): where a resumed attempt's clock continues.
    elapsed_s: Mapped[float] = mapped_column(Float, default=0.0)
    report_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class _Action(_Base):
    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("attempt_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the order the session applied them
    t: Mapped[float] = mapped_column(Float)
    record_json: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    has_password: bool
    created: datetime


@dataclass(frozen=True)
class Attempt:
    id: int
    user_id: int
    user_name: str
    scenario_id: str
    seed: int
    started: datetime
    finished: datetime | None
    status: str
    elapsed_s: float
    actions: int
    report: dict | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sqlite_durability(dbapi_connection, _record) -> None:
    # WAL lets several workstation processes read while one writes; synchronous=FULL makes each commit
    # durable (fsynced) before it returns, so an acknowledged action survives a crash or power cut.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Users, attempts and actions in the database at ``url`` (created on first use).

    Parameters
    ----------
    url : str, optional
        An SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``); default :func:`default_url`.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = _engine(self.url)

    # ------------------------------------------------------------------ users
    def add_user(self, name: str, role: str, password: str | None) -> User:
        """A new user; ``password`` None only for the local trainee (who can never log in remotely)."""
        check_user_name(name)
        if role not in ROLES:
            raise SpinesimError(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
        hashed = hash_password(check_password(password)) if password is not None else None
        with Session(self.engine) as db:
            row = _User(name=name, role=role, password_hash=hashed, created=_now())
            db.add(row)
            try:
                db.commit()
            except IntegrityError:
                raise SpinesimError(f"a user called {name!r} already exists",
                                    hint="pick another name, or change the password with `spinesim users passwd`") from None
            return _user(row)

    def set_password(self, name: str, password: str) -> None:
        hashed = hash_password(check_password(password))
        with Session(self.engine) as db:
            row = self._user_row(db, name)
            row.password_hash = hashed
            db.commit()

    def users(self) -> list[User]:
        with Session(self.engine) as db:
            return [_user(row) for row in db.scalars(select(_User).order_by(_User.name))]

    def user(self, name: str) -> User:
        with Session(self.engine) as db:
            return _user(self._user_row(db, name))

    def user_by_id(self, user_id: int) -> User:
        with Session(self.engine) as db:
            row = db.get(_User, user_id)
            if row is None:
                raise SpinesimError(f"no user with id {user_id}")
            return _user(row)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (also for unknown names and the local trainee)."""
        with Session(self.engine) as db:
            row = db.scalar(select(_User).where(_User.name == name))
            # Hash even for an unknown name so that timing does not tell which names exist.
            stored = row.password_hash if row is not None else hash_password("not-a-user-password")
            ok = verify_password(password or "", stored) and row is not None
            return _user(row) if ok else None

    def login_users(self) -> list[User]:
        """Users who can log in (those with a password)."""
        return [user for user in self.users() if user.has_password]

    def local_trainee(self) -> User:
        """The passwordless trainee of a simulator on localhost (created on first use)."""
        with Session(self.engine) as db:
            row = db.scalar(select(_User).where(_User.name == LOCAL_TRAINEE))
            if row is not None:
                return _user(row)
        return self.add_user(LOCAL_TRAINEE, "trainee", None)

    @staticmethod
    def _user_row(db: Session, name: str) -> _User:
        row = db.scalar(select(_User).where(_User.name == name))
        if row is None:
            raise SpinesimError(f"no user called {name!r}", hint="see `spinesim users list`")
        return row

    # ------------------------------------------------------------------ attempts
    def start_attempt(self, user_id: int, scenario_id: str, seed: int) -> int:
        """A new attempt in progress; returns its id."""
        with Session(self.engine) as db:
            row = _Attempt(user_id=user_id, scenario_id=scenario_id, seed=seed, started=_now(), status="in_progress",
                           elapsed_s=0.0)
            db.add(row)
            db.commit()
            return row.id

    def append_action(self, attempt_id: int, seq: int, record: dict) -> None:
        """Commit action number ``seq`` (1-based, no gaps) of an attempt; durable when this returns.

        Raises
        ------
        SpinesimError
            If action ``seq`` is already stored or ``seq`` leaves a gap (two writers on one attempt).
        """
        text = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with Session(self.engine) as db:
            attempt = db.get(_Attempt, attempt_id)
            if attempt is None or attempt.status != "in_progress":
                raise SpinesimError(f"attempt {attempt_id} is not in progress", hint="start a new attempt")
            stored = db.scalar(select(_Action.seq).where(_Action.attempt_id == attempt_id).order_by(_Action.seq.desc()))
            if seq != (stored or 0) + 1:
                raise SpinesimError(f"attempt {attempt_id}: action {seq} does not follow the stored action {stored or 0}",
                                    hint="the attempt is open in another window; reload it there")
            db.add(_Action(attempt_id=attempt_id, seq=seq, t=float(record["t"]), record_json=text))
            attempt.elapsed_s = float(record["t"])
            try:
                db.commit()
            except IntegrityError:
                raise SpinesimError(f"attempt {attempt_id}: action {seq} is already stored",
                                    hint="the attempt is open in another window; reload it there") from None

    def actions(self, attempt_id: int) -> list[dict]:
        """The attempt's action records in order."""
        with Session(self.engine) as db:
            rows = db.scalars(select(_Action.record_json).where(_Action.attempt_id == attempt_id).order_by(_Action.seq))
            return [json.loads(text) for text in rows]

    def finish_attempt(self, attempt_id: int, report: dict) -> None:
        with Session(self.engine) as db:
            attempt = self._attempt_row(db, attempt_id)
            attempt.status = "finished"
            attempt.finished = _now()
            attempt.report_json = json.dumps(report, allow_nan=False)
            db.commit()

    def attempt(self, attempt_id: int) -> Attempt:
        found = self.attempts(attempt_id=attempt_id)
        if not found:
            raise SpinesimError(f"no attempt with id {attempt_id}")
        return found[0]

    def attempts(self, *, user_id: int | None = None, scenario_id: str | None = None, status: str | None = None,
                 attempt_id: int | None = None) -> list[Attempt]:
        """Attempts, oldest first, optionally of one user, scenario or status."""
        counts = (select(_Action.attempt_id, func.count(_Action.id).label("n")).group_by(_Action.attempt_id).subquery())
        query = (select(_Attempt, _User.name, counts.c.n).join(_User, _User.id == _Attempt.user_id)
                 .outerjoin(counts, counts.c.attempt_id == _Attempt.id).order_by(_Attempt.started, _Attempt.id))
        for column, value in ((_Attempt.user_id, user_id), (_Attempt.scenario_id, scenario_id),
                              (_Attempt.status, status), (_Attempt.id, attempt_id)):
            if value is not None:
                query = query.where(column == value)
        with Session(self.engine) as db:
            return [Attempt(row.id, row.user_id, name, row.scenario_id, row.seed, _aware(row.started),
                            _aware(row.finished), row.status, row.elapsed_s, n or 0,
                            json.loads(row.report_json) if row.report_json else None)
                    for row, name, n in db.execute(query)]

    def peer_grades(self, scenario_id: str) -> list[float]:
        """The grades of every finished attempt at ``scenario_id`` (any user), oldest first: the peers an
        attempt is ranked among (:func:`scoring.peers.percentile_rank`)."""
        query = (select(_Attempt.report_json)
                 .where(_Attempt.scenario_id == scenario_id, _Attempt.status == "finished",
                        _Attempt.report_json.is_not(None))
                 .order_by(_Attempt.started, _Attempt.id))
        with Session(self.engine) as db:
            return [float(json.loads(text)["grade"]) for text in db.scalars(query)]

    def unfinished_attempt(self, user_id: int) -> Attempt | None:
        """The user's latest attempt still in progress (interrupted by a crash or a closed window)."""
        found = self.attempts(user_id=user_id, status="in_progress")
        return found[-1] if found else None

    def log_text(self, attempt_id: int, patient_seed: int | None = None) -> str:
        """The attempt as a JSON Lines action log (header + one action a line), as a Session writes it;
        ``patient_seed``: its drawn patient's (``case.for_attempt(seed).patient_seed``), if any."""
        attempt = self.attempt(attempt_id)
        header = {"spinesim_log": LOG_FORMAT_VERSION, "scenario": attempt.scenario_id, "seed": attempt.seed}
        if patient_seed is not None:
            header["patient"] = patient_seed
        lines = [header] + self.actions(attempt_id)
        return "".join(json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n" for line in lines)

    @staticmethod
    def _attempt_row(db: Session, attempt_id: int) -> _Attempt:
        row = db.get(_Attempt, attempt_id)
        if row is None:
            raise SpinesimError(f"no attempt with id {attempt_id}")
        return row


# --------------------------------------------------------------------------- a programme's records
# The columns of the export (one row per attempt), as `spinesim records` and the Review tab write them.
RECORD_COLUMNS: tuple[str, ...] = ("attempt", "trainee", "scenario", "procedure", "started_utc", "status", "grade",
                                   "passed", "flags", "checklist_points", "checklist_steps", "rating_total",
                                   "rating_maximum")


def attempt_record(attempt: Attempt, procedure: str = "") -> dict:
    """One attempt as a row of the programme's records (:data:`RECORD_COLUMNS`); the report's fields are
    empty for an attempt not finished. ``procedure`` is used when there is no report to name it."""
    from scoring.checklist import STATUS_POINTS

    report = attempt.report or {}
    checklist = report.get("checklist") or []
    rating = report.get("global_rating") or {}
    return {"attempt": attempt.id, "trainee": attempt.user_name, "scenario": attempt.scenario_id,
            "procedure": report.get("procedure", procedure),
            "started_utc": attempt.started.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "status": attempt.status,
            "grade": f"{report['grade']:.1f}" if report else "",
            "passed": ("yes" if report["passed"] else "no") if report else "",
            "flags": " ".join(flag["code"] for flag in report.get("flags", [])),
            "checklist_points": f"{sum(STATUS_POINTS[item['status']] for item in checklist):g}" if checklist else "",
            "checklist_steps": len(checklist) if checklist else "",
            "rating_total": rating.get("total", ""), "rating_maximum": rating.get("maximum", "")}


def records_csv(attempts: list[Attempt], procedures: dict[str, str] | None = None) -> str:
    """The attempts as CSV text, a header then one row each (:func:`attempt_record`); ``procedures`` maps
    a scenario id to its procedure for attempts without a report.

    Examples
    --------
    >>> records_csv([]).strip().split(",")[:5]
    ['attempt', 'trainee', 'scenario', 'procedure', 'started_utc']
    """
    procedures = procedures or {}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=RECORD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for attempt in attempts:
        record = attempt_record(attempt, procedures.get(attempt.scenario_id, ""))
        writer.writerow({key: _spreadsheet_safe(value) for key, value in record.items()})
    return text.getvalue()


def _spreadsheet_safe(value):
    # A cell starting with = + - @ is a formula to a spreadsheet; quote it so it reads as text.
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


def _user(row: _User) -> User:
    return User(row.id, row.name, row.role, bool(row.password_hash), _aware(row.created))


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every time stored is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _engine(url: str) -> Engine:
    try:
        engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    except (ArgumentError, ValueError) as error:
        raise SpinesimError(f"not a database URL: {url!r} ({error})",
                            hint="use sqlite:///path/to/spinesim.db or postgresql://user@host/dbname") from None
    except ModuleNotFoundError as error:
        raise SpinesimError(f"the database driver for {url.split(':')[0]!r} is not installed ({error.name})",
                            hint="install it with pip (psycopg for PostgreSQL)") from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine, "connect", _sqlite_durability)
    try:
        _Base.metadata.create_all(engine)
    except OperationalError as error:
        raise SpinesimError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {error.orig}",
                            hint="check the --db URL and that the server is reachable") from None
    return engine
