"""``spinesim cohorts``, ``spinesim assign`` and ``spinesim programme``: an instructor's programme on the
command line: cohorts of trainees, cases assigned to a trainee or a cohort with a due date, each trainee's
list, and how each cohort does at each case (:mod:`frontends.programme`)."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from rich.console import Console
from rich.table import Table

from frontends.cli import user_text

out = Console(soft_wrap=True)
_DB_OPTION = click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")


@click.group()
def cohorts() -> None:
    """Cohorts of trainees (a year group, a rotation) that cases can be assigned to."""


@cohorts.command("add")
@click.argument("name")
@_DB_OPTION
def add(name: str, db_url: str | None) -> None:
    """Add an empty cohort NAME."""
    from frontends.store import Store

    Store(db_url).add_cohort(name)
    out.print(f"Added cohort {user_text(name)}.")


@cohorts.command("join")
@click.argument("name")
@click.argument("trainees", nargs=-1, required=True)
@_DB_OPTION
def join(name: str, trainees: tuple[str, ...], db_url: str | None) -> None:
    """Put TRAINEES (user names) in cohort NAME."""
    from frontends.store import Store

    store = Store(db_url)
    for trainee in trainees:
        store.join_cohort(name, trainee)
    out.print(f"Cohort {user_text(name)}: {', '.join(user_text(t) for t in store.cohorts()[name])}.")


@cohorts.command("list")
@_DB_OPTION
def list_cohorts(db_url: str | None) -> None:
    """The cohorts and their trainees."""
    from frontends.store import Store

    table = Table("cohort", "trainees")
    for name, members in Store(db_url).cohorts().items():
        table.add_row(user_text(name), ", ".join(user_text(m) for m in members) or "none yet")
    out.print(table)


@click.command()
@click.argument("scenario_id")
@click.option("--trainee", help="Assign to this trainee (a user name).")
@click.option("--cohort", help="Assign to every trainee of this cohort.")
@click.option("--by", "instructor", required=True, help="The instructor who assigns it (a user name).")
@click.option("--due", type=click.DateTime(formats=["%Y-%m-%d"]), help="Due date, YYYY-MM-DD (end of that day, UTC).")
@_DB_OPTION
def assign(scenario_id: str, trainee: str | None, cohort: str | None, instructor: str, due: datetime | None,
           db_url: str | None) -> None:
    """Assign case SCENARIO_ID (a library or served case's id) to a trainee or a cohort."""
    from frontends.store import Store

    deadline = due.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc) if due else None
    Store(db_url).assign(scenario_id, by=instructor, user=trainee, cohort=cohort, due=deadline)
    when = f", due {deadline:%Y-%m-%d}" if deadline else ""
    out.print(f"Assigned {user_text(scenario_id)} to {user_text(trainee or 'cohort ' + cohort)}{when}.")


@click.command()
@click.argument("trainee")
@_DB_OPTION
def assignments(trainee: str, db_url: str | None) -> None:
    """The cases assigned to TRAINEE, the ones to do first (soonest due first)."""
    from frontends.store import Store

    store = Store(db_url)
    table = Table("case", "due", "assigned by", "through", "done")
    for item in store.assignments_for(store.user(trainee).id):
        table.add_row(user_text(item.scenario_id), f"{item.due:%Y-%m-%d}" if item.due else "–",
                      user_text(item.assigned_by), user_text(item.cohort) if item.cohort else "directly",
                      "yes" if item.done else "no")
    out.print(table)


@click.command()
@click.option("--cohort", help="Only this cohort (default: every cohort, and all trainees together).")
@click.option("--scenario", "scenario_id", help="Only this case (a scenario id).")
@_DB_OPTION
def programme(cohort: str | None, scenario_id: str | None, db_url: str | None) -> None:
    """Per cohort and case: pass rate, grades, CUSUM, dose and fluoroscopy time, frequent flags."""
    from anatomy_models.errors import SpinesimError
    from frontends.programme import ALL_TRAINEES, GRADE_BANDS, programme_summaries
    from frontends.store import Store
    from scoring.curves import verdict_text

    store = Store(db_url)
    cohorts = store.cohorts()
    if cohort is not None and cohort not in cohorts and cohort != ALL_TRAINEES:
        raise SpinesimError(f"no cohort called {cohort!r}", hint="see `spinesim cohorts list`")
    found = programme_summaries(store.attempts(), cohorts, cohort=cohort, scenario_id=scenario_id)
    if not found:
        out.print("No finished or abandoned attempts for this choice yet.")
    # One block per cohort and case (readable at any terminal width, unlike a ten-column table).
    for row in found:
        abandoned = f" (+{row.abandoned} abandoned)" if row.abandoned else ""
        rate = f"{row.pass_rate:.0%}" if row.pass_rate is not None else "–"
        out.print(f"[bold]{user_text(row.cohort)}[/] at [bold]{user_text(row.scenario_id)}[/] "
                  f"({row.procedure.replace('_', ' ')})")
        out.print(f"  {row.trainees} trainee{'s' if row.trainees != 1 else ''}, {row.finished} finished "
                  f"attempt{'s' if row.finished != 1 else ''}{abandoned}, pass rate {rate}")
        out.print("  grades " + ", ".join(f"{name}: {count}" for (name, _), count in zip(GRADE_BANDS, row.grade_counts)))
        out.print(f"  CUSUM (10% vs 30% failures): {verdict_text(row.curve) if row.finished else '–'}")
        out.print(f"  DAP {_median_p75(row.dap_median_gy_cm2, row.dap_p75_gy_cm2, 3, 'Gy·cm²')}; "
                  f"fluoroscopy time {_median_p75(row.fluoro_median_s, row.fluoro_p75_s, 1, 's')}")
        out.print("  most frequent flags: "
                  + (", ".join(f"{user_text(title)} ×{count}" for title, count in row.flags) or "none"))


def _median_p75(median: float | None, p75: float | None, decimals: int, unit: str) -> str:
    return f"median {median:.{decimals}f} {unit}, p75 {p75:.{decimals}f} {unit}" if median is not None else "–"
