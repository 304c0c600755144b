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
    """The department's own cases: add a scenario file to the database, list them."""


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
