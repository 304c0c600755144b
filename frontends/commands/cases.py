"""``spinesim cases``: the department's own cases, kept in its database and served beside the library (the
instructor's case editor in the browser saves to the same place the same way: :mod:`frontends.casebook`)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from frontends.cli import user_text

out = Console(soft_wrap=True)


@click.group()
def cases() -> None:
    """The department's own cases: add a scenario file to the database, list, show, edit and remove them."""


@cases.command("add")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--by", "instructor", required=True, help="The instructor who adds it (a user name).")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def add(file: Path, instructor: str, db_url: str | None) -> None:
    """Validate scenario FILE (as `scenario validate` does) and keep it as a department case."""
    from frontends.casebook import department_catalogue, save_case
    from frontends.store import Store
    from scenarios.catalogue import read_scenario_file

    store = Store(db_url)
    case = save_case(store, read_scenario_file(file), by=instructor, catalogue=department_catalogue(store))
    out.print(f"Added {user_text(case.id)} ({case.procedure}) to the department's cases; assign it with "
              f"`spinesim assign {user_text(case.id)} --trainee NAME --by {user_text(instructor)}`.")


@cases.command("list")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def list_cases(db_url: str | None) -> None:
    """The department's cases: id, procedure, who added them and when."""
    from frontends.casebook import DEPARTMENT, department_catalogue
    from frontends.store import Store

    store = Store(db_url)
    catalogue = department_catalogue(store)
    authors = {stored.scenario_id: stored for stored in store.cases()}
    table = Table("id", "procedure", "title", "added by", "on")
    for key, scenario in catalogue.scenarios.items():
        if catalogue.groups[key] == DEPARTMENT:
            table.add_row(user_text(key), scenario.procedure, user_text(scenario.title),
                          user_text(authors[key].author), f"{authors[key].created:%Y-%m-%d}")
    out.print(table)
    for warning in catalogue.warnings:
        out.print(f"[yellow]warning:[/] {user_text(warning)} (left out)", highlight=False)


@cases.command("show")
@click.argument("case_id")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def show(case_id: str, db_url: str | None) -> None:
    """Print department case CASE_ID as a scenario file (to change it: save, edit, `spinesim cases edit`)."""
    from anatomy_models.errors import SpinesimError
    from frontends.store import Store

    stored = {case.scenario_id: case for case in Store(db_url).cases()}
    if case_id not in stored:
        raise SpinesimError(f"the department has no case {case_id!r}", hint="see `spinesim cases list`")
    click.echo(stored[case_id].yaml_text, nl=False)


@cases.command("edit")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def edit(file: Path, db_url: str | None) -> None:
    """Replace the department case with FILE's id by scenario FILE (validated as `scenario validate` does).
    Refused once a trainee has attempted the case: add the change as a new case instead."""
    from frontends.casebook import department_catalogue, edit_case
    from frontends.store import Store
    from scenarios.catalogue import read_scenario_file

    store = Store(db_url)
    case = edit_case(store, read_scenario_file(file), catalogue=department_catalogue(store))
    out.print(f"Changed the department case {user_text(case.id)}; assignments still to do get the changed case.")


@cases.command("remove")
@click.argument("case_id")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def remove(case_id: str, db_url: str | None) -> None:
    """Delete department case CASE_ID. Refused while attempts or assignments name it (a trainee's record of
    training keeps its cases)."""
    from frontends.casebook import department_catalogue, remove_case
    from frontends.store import Store

    store = Store(db_url)
    remove_case(store, case_id, catalogue=department_catalogue(store))
    out.print(f"Removed {user_text(case_id)} from the department's cases.")
