"""``spinesim records -o FILE.csv``: a programme's attempt records for its own files and statistics."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from frontends.cli import OutputPath, user_text

out = Console(soft_wrap=True)


@click.command()
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write (one row per attempt).")
@click.option("--trainee", help="Only this user's attempts (a user name).")
@click.option("--scenario", "scenario_id", help="Only the attempts at this scenario id.")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def records(output: Path, trainee: str | None, scenario_id: str | None, db_url: str | None) -> None:
    """Export the attempts in the database as CSV: trainee, case, procedure, date, grade, flags, checklist."""
    from anatomy_models.atomic import atomic_path
    from frontends.store import Store, records_csv
    from scenarios.schema import library_scenarios

    store = Store(db_url)
    user_id = store.user(trainee).id if trainee is not None else None
    attempts = store.attempts(user_id=user_id, scenario_id=scenario_id)
    procedures = {key: scenario.procedure for key, scenario in library_scenarios().items()}
    with atomic_path(output) as temporary:
        temporary.write_text(records_csv(attempts, procedures), encoding="utf-8")
    out.print(f"Wrote {len(attempts)} attempt{'s' if len(attempts) != 1 else ''} to {user_text(output)}.")
