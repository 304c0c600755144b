"""The attempt store: users, their attempts, and every action of every attempt, in a SQL database.

SQLite by default (``$SPINESIM_HOME/spinesim.db``); any SQLAlchemy URL works, so a department
server can use PostgreSQL (``postgresql://user@host/spinesim``). The schema uses only portable
column types (integers, text, floats, timestamps with time zone).

The database is the one source of truth for an attempt made in the web app: each action is
committed (one transaction, durable before :meth:`Store.append_action` returns) before the trainee's
screen shows its result. The JSON Lines log other tools read (``spinesim run``, scoring) is written
from these rows by :meth:`Store.log_text`, with the same header and records a
:class:`simulator.session.fold.Session` writes; it is never edited by hand, so the two cannot disagree.

The schema has a version (table ``schema_version``). Opening a database brings it up to this code's
:data:`SCHEMA_VERSION` one step at a time (:data:`_MIGRATIONS`, each in one transaction, so a failed step
leaves the database as it was), keeping every row: a department's records survive an upgrade. A database
from before versions is version 1; one written by a newer spinesim is refused, not damaged.

Besides users and attempts, an instructor's programme: cohorts of trainees, cases assigned (with a due
date) to a trainee or a cohort, comments on an attempt at a step of its replay, and the department's own
cases (scenario YAML an instructor authored, validated before it is stored: :mod:`frontends.casebook`).

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
import hmac
import importlib.util
import io
import json
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from sqlalchemy import (Column, DateTime, Float, ForeignKey, Integer, String, Table, Text, UniqueConstraint,
                        create_engine, event, func, inspect, or_, select)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, InterfaceError, OperationalError
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
    status: Mapped[str] = mapped_column(String(16))  # in_progress | finished | abandoned
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


class _Cohort(_Base):
    __tablename__ = "cohorts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Member(_Base):
    __tablename__ = "cohort_members"
    __table_args__ = (UniqueConstraint("cohort_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class _Assignment(_Base):
    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)  # or a cohort
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id"), nullable=True, index=True)
    due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    assigned_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Comment(_Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the replay's step (1-based), or the attempt
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _Case(_Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[str] = mapped_column(String(64), unique=True)
    yaml_text: Mapped[str] = mapped_column(Text)  # a scenario file's text, validated (frontends.casebook)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The schema's version: one row (id 1). SCHEMA_VERSION is what this code writes; _MIGRATIONS[v] takes a
# database from v - 1 to v. Version 1 is the schema before versions (users, attempts, actions).
_VERSION = Table("schema_version", _Base.metadata, Column("id", Integer, primary_key=True),
                 Column("version", Integer, nullable=False))
SCHEMA_VERSION = 3


def _add_programme_tables(connection) -> None:
    """Version 2: cohorts, their members, assignments and comments."""
    for model in (_Cohort, _Member, _Assignment, _Comment):
        model.__table__.create(connection, checkfirst=True)


def _add_cases_table(connection) -> None:
    """Version 3: the department's own cases."""
    _Case.__table__.create(connection, checkfirst=True)


_MIGRATIONS = {2: _add_programme_tables, 3: _add_cases_table}


def _upgrade(engine: Engine) -> None:
    """Bring the database at ``engine`` to :data:`SCHEMA_VERSION` (a new one is created at it)."""
    tables = set(inspect(engine).get_table_names())
    if "schema_version" not in tables:
        try:
            with engine.begin() as connection:
                if "users" not in tables:  # a new database
                    _Base.metadata.create_all(connection)
                    connection.execute(_VERSION.insert().values(id=1, version=SCHEMA_VERSION))
                else:  # written before the schema had versions
                    _VERSION.create(connection, checkfirst=True)
                    connection.execute(_VERSION.insert().values(id=1, version=1))
        except IntegrityError:  # another process created it at the same moment
            pass
    with engine.connect() as connection:
        version = connection.execute(select(_VERSION.c.version).where(_VERSION.c.id == 1)).scalar_one()
    if version > SCHEMA_VERSION:
        raise SpinesimError(f"the database {engine.url.render_as_string(hide_password=True)} has schema version "
                            f"{version}, written by a newer spinesim; this one reads up to version {SCHEMA_VERSION}",
                            hint="upgrade spinesim (the database is left as it is)")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        with engine.begin() as connection:  # the step and its version number together, or neither
            _MIGRATIONS[step](connection)
            connection.execute(_VERSION.update().where(_VERSION.c.id == 1).values(version=step))


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


@dataclass(frozen=True)
class Assignment:
    """A case assigned to a trainee (directly or through a cohort); ``done`` once they finished an attempt
    at it after it was assigned."""

    id: int
    scenario_id: str
    due: datetime | None
    assigned_by: str
    cohort: str | None
    created: datetime
    done: bool


@dataclass(frozen=True)
class Comment:
    id: int
    attempt_id: int
    author: str
    step: int | None
    text: str
    created: datetime
    reply: bool  # the trainee's reply to their instructor's comment at the same step (or on the whole attempt)


@dataclass(frozen=True)
class StoredCase:
    """A department case: its scenario id, its scenario file's text, who saved it and when."""

    scenario_id: str
    yaml_text: str
    author: str
    created: datetime


MAX_COMMENT_CHARS = 4000


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


def _sqlite_failure_said_clearly(context) -> None:
    """An SQLite database that cannot be written (disk full, an I/O error, a read-only or vanished file) is the
    user's to fix, not an internal error: said once, naming the file. SQLite's journal has already rolled the
    half-done write back, so nothing acknowledged earlier is lost (tests/frontends/test_store_faults.py)."""
    error = context.original_exception
    if isinstance(error, sqlite3.OperationalError):
        database = context.engine.url.database if context.engine is not None else "(the database)"
        raise SpinesimError(f"cannot use the database {database} ({error})",
                            hint="check that the disk has space and that its folder is writable, then try again; "
                                 "what was not saved is not in the database, everything saved before is")


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

    def abandon_attempt(self, attempt_id: int) -> None:
        """Mark an attempt in progress as abandoned by its trainee: kept with its actions, never graded (so
        not counted as a failure, nor among the peers a grade is ranked with).

        Raises
        ------
        SpinesimError
            If the attempt is not in progress (finished or abandoned already).
        """
        with Session(self.engine) as db:
            attempt = self._attempt_row(db, attempt_id)
            if attempt.status != "in_progress":
                raise SpinesimError(f"attempt {attempt_id} is {attempt.status.replace('_', ' ')}, not in progress",
                                    hint="only an attempt in progress can be abandoned")
            attempt.status = "abandoned"
            attempt.finished = _now()
            db.commit()

    def attempt(self, attempt_id: int) -> Attempt:
        found = self.attempts(attempt_id=attempt_id)
        if not found:
            raise SpinesimError(f"no attempt with id {attempt_id}")
        return found[0]

    def attempts(self, *, user_id: int | None = None, scenario_id: str | None = None, status: str | None = None,
                 attempt_id: int | None = None, since: datetime | None = None) -> list[Attempt]:
        """Attempts, oldest first, optionally of one user, scenario or status, or started at ``since`` or later."""
        counts = (select(_Action.attempt_id, func.count(_Action.id).label("n")).group_by(_Action.attempt_id).subquery())
        query = (select(_Attempt, _User.name, counts.c.n).join(_User, _User.id == _Attempt.user_id)
                 .outerjoin(counts, counts.c.attempt_id == _Attempt.id).order_by(_Attempt.started, _Attempt.id))
        for column, value in ((_Attempt.user_id, user_id), (_Attempt.scenario_id, scenario_id),
                              (_Attempt.status, status), (_Attempt.id, attempt_id)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            # In UTC, as every time is stored (SQLite keeps the digits, not the zone).
            query = query.where(_Attempt.started >= _aware(since).astimezone(timezone.utc))
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

    # ------------------------------------------------------------------ cohorts and assignments
    def add_cohort(self, name: str) -> None:
        """A new, empty cohort of trainees (a year group, a rotation)."""
        check_user_name(name)
        with Session(self.engine) as db:
            db.add(_Cohort(name=name, created=_now()))
            try:
                db.commit()
            except IntegrityError:
                raise SpinesimError(f"a cohort called {name!r} already exists") from None

    def join_cohort(self, cohort: str, user: str) -> None:
        """Put trainee ``user`` in ``cohort`` (a second time changes nothing)."""
        with Session(self.engine) as db:
            cohort_row, user_row = self._cohort_row(db, cohort), self._user_row(db, user)
            if user_row.role != "trainee":
                raise SpinesimError(f"{user!r} is an instructor; cohorts hold trainees")
            if db.scalar(select(_Member).where(_Member.cohort_id == cohort_row.id, _Member.user_id == user_row.id)):
                return
            db.add(_Member(cohort_id=cohort_row.id, user_id=user_row.id))
            db.commit()

    def cohorts(self) -> dict[str, list[str]]:
        """Each cohort's name and its trainees' names, by name."""
        query = (select(_Cohort.name, _User.name).outerjoin(_Member, _Member.cohort_id == _Cohort.id)
                 .outerjoin(_User, _User.id == _Member.user_id).order_by(_Cohort.name, _User.name))
        found: dict[str, list[str]] = {}
        with Session(self.engine) as db:
            for cohort, user in db.execute(query):
                found.setdefault(cohort, []).extend([user] if user else [])
        return found

    def assign(self, scenario_id: str, *, by: str, user: str | None = None, cohort: str | None = None,
               due: datetime | None = None) -> int:
        """Assign case ``scenario_id`` to trainee ``user`` or to every trainee of ``cohort`` (one of the two),
        by instructor ``by``, due at ``due`` (UTC; None for no date). Returns the assignment's id."""
        if (user is None) == (cohort is None):
            raise SpinesimError("assign a case to a trainee or to a cohort (one of the two)")
        with Session(self.engine) as db:
            instructor = self._user_row(db, by)
            if instructor.role != "instructor":
                raise SpinesimError(f"{by!r} is a trainee; only an instructor assigns cases")
            user_row = self._user_row(db, user) if user is not None else None
            if user_row is not None and user_row.role != "trainee":
                raise SpinesimError(f"{user!r} is an instructor; cases are assigned to trainees")
            cohort_row = self._cohort_row(db, cohort) if cohort is not None else None
            row = _Assignment(scenario_id=scenario_id, user_id=user_row.id if user_row else None,
                              cohort_id=cohort_row.id if cohort_row else None, due=due, assigned_by=instructor.id,
                              created=_now())
            db.add(row)
            db.commit()
            return row.id

    def assignments_for(self, user_id: int) -> list[Assignment]:
        """The cases assigned to a trainee, directly or through their cohorts: the ones still to do first
        (soonest due first, undated last), then the done ones."""
        cohorts = select(_Member.cohort_id).where(_Member.user_id == user_id)
        query = (select(_Assignment, _User.name, _Cohort.name).join(_User, _User.id == _Assignment.assigned_by)
                 .outerjoin(_Cohort, _Cohort.id == _Assignment.cohort_id)
                 .where(or_(_Assignment.user_id == user_id, _Assignment.cohort_id.in_(cohorts))))
        finished = [(a.scenario_id, a.started) for a in self.attempts(user_id=user_id, status="finished")]
        with Session(self.engine) as db:
            found = [Assignment(row.id, row.scenario_id, _aware(row.due), by, cohort, _aware(row.created),
                                any(case == row.scenario_id and started >= _aware(row.created)
                                    for case, started in finished))
                     for row, by, cohort in db.execute(query)]
        latest = datetime.max.replace(tzinfo=timezone.utc)
        return sorted(found, key=lambda a: (a.done, a.due or latest, a.created, a.id))

    @staticmethod
    def _cohort_row(db: Session, name: str) -> _Cohort:
        row = db.scalar(select(_Cohort).where(_Cohort.name == name))
        if row is None:
            raise SpinesimError(f"no cohort called {name!r}", hint="see `spinesim cohorts list`")
        return row

    # ------------------------------------------------------------------ the department's cases
    def save_case(self, scenario_id: str, yaml_text: str, *, by: str) -> None:
        """Keep a department case (``yaml_text``, a scenario file already validated by
        :func:`frontends.casebook.save_case`, the one way in) under ``scenario_id``, saved by instructor ``by``."""
        with Session(self.engine) as db:
            author = self._user_row(db, by)
            if author.role != "instructor":
                raise SpinesimError(f"{by!r} is a trainee; only an instructor saves department cases")
            db.add(_Case(scenario_id=scenario_id, yaml_text=yaml_text, author_id=author.id, created=_now()))
            try:
                db.commit()
            except IntegrityError:
                raise SpinesimError(f"the department already has a case with the id {scenario_id!r}",
                                    where="field 'id'", hint="give the new case another id") from None

    def update_case(self, scenario_id: str, yaml_text: str) -> None:
        """Replace department case ``scenario_id``'s scenario file (validated: :func:`frontends.casebook.edit_case`,
        which also decides whether it may change); its author and date stay those of the case."""
        with Session(self.engine) as db:
            row = self._case_row(db, scenario_id)
            row.yaml_text = yaml_text
            db.commit()

    def remove_case(self, scenario_id: str) -> None:
        """Delete department case ``scenario_id`` (:func:`frontends.casebook.remove_case` decides whether it may)."""
        with Session(self.engine) as db:
            db.delete(self._case_row(db, scenario_id))
            db.commit()

    def case_uses(self, scenario_id: str) -> tuple[int, int]:
        """How many attempts (any status) and assignments name case ``scenario_id``."""
        with Session(self.engine) as db:
            attempts = db.scalar(select(func.count()).select_from(_Attempt).where(_Attempt.scenario_id == scenario_id))
            assignments = db.scalar(select(func.count()).select_from(_Assignment)
                                    .where(_Assignment.scenario_id == scenario_id))
        return int(attempts or 0), int(assignments or 0)

    @staticmethod
    def _case_row(db: Session, scenario_id: str) -> _Case:
        row = db.scalar(select(_Case).where(_Case.scenario_id == scenario_id))
        if row is None:
            raise SpinesimError(f"the department has no case {scenario_id!r}", hint="see `spinesim cases list`")
        return row

    def cases(self) -> list[StoredCase]:
        """The department's cases, by id."""
        query = select(_Case, _User.name).join(_User, _User.id == _Case.author_id).order_by(_Case.scenario_id)
        with Session(self.engine) as db:
            return [StoredCase(row.scenario_id, row.yaml_text, name, _aware(row.created))
                    for row, name in db.execute(query)]

    # ------------------------------------------------------------------ comments
    def add_comment(self, attempt_id: int, author_id: int, text: str, step: int | None = None) -> int:
        """An instructor's comment on an attempt, or its trainee's reply to one, at replay step ``step`` (1-based)
        or on the whole attempt. Returns its id.

        A trainee replies on their own attempt only, and only where an instructor has commented (the same step,
        or the whole attempt): the comments are the instructor's debrief, the reply answers it at the moment it
        is about (a trainee's notes to themselves have no reader).

        Raises
        ------
        SpinesimError
            If the text is empty or too long, the step is not in the attempt, or a trainee writes on another's
            attempt or where no instructor has commented.
        """
        text = (text or "").strip()
        if not text or len(text) > MAX_COMMENT_CHARS:
            raise SpinesimError(f"a comment has 1 to {MAX_COMMENT_CHARS} characters, not {len(text)}")
        with Session(self.engine) as db:
            attempt = self._attempt_row(db, attempt_id)
            actions = db.scalar(select(func.count(_Action.id)).where(_Action.attempt_id == attempt_id)) or 0
            if step is not None and not 1 <= step <= actions:
                raise SpinesimError(f"step {step} is not in attempt {attempt_id} (steps 1 to {actions})")
            author = db.get(_User, author_id)
            if author is None:
                raise SpinesimError(f"no user with id {author_id}")
            if author.role == "trainee":
                if attempt.user_id != author.id:
                    raise SpinesimError(f"attempt {attempt_id} is not {author.name}'s: a trainee replies on their "
                                        "own attempts only")
                where = _Comment.step.is_(None) if step is None else _Comment.step == step
                answered = db.scalar(select(func.count(_Comment.id)).join(_User, _User.id == _Comment.author_id)
                                     .where(_Comment.attempt_id == attempt_id, where, _User.role == "instructor"))
                if not answered:
                    at = "on the whole attempt" if step is None else f"at step {step}"
                    raise SpinesimError(f"your instructor has not commented {at}: there is nothing to reply to",
                                        hint="reply at a step where your instructor's comment is shown")
            row = _Comment(attempt_id=attempt_id, author_id=author_id, step=step, text=text, created=_now())
            db.add(row)
            db.commit()
            return row.id

    def comments(self, attempt_id: int) -> list[Comment]:
        """An attempt's comments, oldest first."""
        query = (select(_Comment, _User.name, _User.role).join(_User, _User.id == _Comment.author_id)
                 .where(_Comment.attempt_id == attempt_id).order_by(_Comment.created, _Comment.id))
        with Session(self.engine) as db:
            return [Comment(row.id, row.attempt_id, name, row.step, row.text, _aware(row.created), role == "trainee")
                    for row, name, role in db.execute(query)]


# --------------------------------------------------------------------------- a programme's records
# The columns of the export (one row per attempt), as `spinesim attempts export --format csv` and the
# Review tab write them; each is described in the README ("The programme's records").
RECORD_COLUMNS: tuple[str, ...] = ("attempt", "trainee", "scenario", "procedure", "started_utc", "status", "grade",
                                   "passed", "flags", "checklist_points", "checklist_steps", "rating_total",
                                   "rating_maximum", "finished_utc", "attempt_time_s", "fluoro_shots", "fluoro_s",
                                   "dap_gy_cm2", "reference_air_kerma_mgy")


def attempt_record(attempt: Attempt, procedure: str = "") -> dict:
    """One attempt as a row of the programme's records (:data:`RECORD_COLUMNS`); the report's fields are
    empty for an attempt not finished. ``procedure`` is used when there is no report to name it."""
    from scoring.checklist import STATUS_POINTS

    report = attempt.report or {}
    checklist = report.get("checklist") or []
    rating = report.get("global_rating") or {}
    metrics = report.get("metrics") or {}
    ended = attempt.status != "in_progress"  # finished or abandoned: its time is final
    return {"attempt": attempt.id, "trainee": attempt.user_name, "scenario": attempt.scenario_id,
            "procedure": report.get("procedure", procedure),
            "started_utc": _utc_text(attempt.started),
            "status": attempt.status,
            "grade": f"{report['grade']:.1f}" if report else "",
            "passed": ("yes" if report["passed"] else "no") if report else "",
            "flags": " ".join(flag["code"] for flag in report.get("flags", [])),
            "checklist_points": f"{sum(STATUS_POINTS[item['status']] for item in checklist):g}" if checklist else "",
            "checklist_steps": len(checklist) if checklist else "",
            "rating_total": rating.get("total", ""), "rating_maximum": rating.get("maximum", ""),
            "finished_utc": _utc_text(attempt.finished) if ended and attempt.finished else "",
            "attempt_time_s": f"{attempt.elapsed_s:.1f}" if ended else "",
            "fluoro_shots": metrics.get("fluoro_shots", ""), "fluoro_s": metrics.get("fluoro_seconds", ""),
            "dap_gy_cm2": metrics.get("dose_area_product_gy_cm2", ""),
            "reference_air_kerma_mgy": metrics.get("reference_air_kerma_mgy", "")}


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


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


def _with_driver(url: str) -> str:
    """A PostgreSQL URL without a driver gets pg8000 (spinesim's PostgreSQL driver, BSD-licensed) when
    SQLAlchemy's default (psycopg2) is not installed."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in ("postgresql", "postgres"):
        driver = "" if importlib.util.find_spec("psycopg2") else "+pg8000"
        return f"postgresql{driver}://{rest}"
    return url


def _engine(url: str) -> Engine:
    url = _with_driver(url)
    try:
        engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    except (ArgumentError, ValueError) as error:
        raise SpinesimError(f"not a database URL: {url!r} ({error})",
                            hint="use sqlite:///path/to/spinesim.db or postgresql://user@host/dbname") from None
    except ModuleNotFoundError as error:
        raise SpinesimError(f"the database driver for {url.split(':')[0]!r} is not installed ({error.name})",
                            hint="install spinesim's PostgreSQL driver: pip install 'spinesim[postgresql]' "
                                 "(pg8000; URLs postgresql+pg8000://user@host/dbname)") from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine, "connect", _sqlite_durability)
        event.listen(engine, "handle_error", _sqlite_failure_said_clearly)
    try:
        _upgrade(engine)
    except (OperationalError, InterfaceError) as error:  # pg8000 reports a refused connection as an interface error
        raise SpinesimError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {error.orig}",
                            hint="check the --db URL and that the server is reachable") from None
    return engine
