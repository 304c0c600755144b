"""``spinesim attempts export``: a programme's attempt records for its own files and statistics (CSV, columns in
the README) or for a learning record store (xAPI statements, :mod:`frontends.xapi`). It is the one CSV exporter:
the Review tab's *Download CSV* writes the same text through the same :func:`frontends.store.records_csv`."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console

from frontends.cli import OutputPath, user_text

out = Console(soft_wrap=True)
# The environment variable that holds the LRS's credentials (key:secret) unless --lrs-auth-env names another:
# never on the command line, where other users of the machine could read it in the process list.
LRS_AUTH_ENV = "SPINESIM_LRS_AUTH"


@click.group()
def attempts() -> None:
    """The attempts in the database: export them as CSV or as xAPI statements (optionally to an LRS)."""


@attempts.command("export")
@click.option("--format", "kind", type=click.Choice(["csv", "xapi"]), required=True,
              help="csv: one row per attempt (columns in the README); xapi: xAPI 1.0.3 statements (a JSON array).")
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path), required=True,
              help="The file to write.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
              help="Only attempts started at this UTC date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM) or later.")
@click.option("--trainee", help="Only this user's attempts (a user name).")
@click.option("--scenario", "scenario_id", help="Only the attempts at this scenario id.")
@click.option("--scenarios", "scenario_folders", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="A folder of served cases (as given to `serve --scenarios`), to name its cases; repeatable.")
@click.option("--homepage", help="The department server's address, the trainees' accounts' home page in xAPI "
                                 "(default http://<this machine's host name>).")
@click.option("--lrs", "lrs_url", help="Also POST the xAPI statements to this learning record store's xAPI endpoint.")
@click.option("--lrs-auth-env", default=LRS_AUTH_ENV, show_default=True,
              help="The environment variable holding the LRS's basic-auth credentials as key:secret.")
@click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")
def export(kind: str, output: Path, since: datetime | None, trainee: str | None, scenario_id: str | None,
           scenario_folders: tuple[str, ...], homepage: str | None, lrs_url: str | None, lrs_auth_env: str,
           db_url: str | None) -> None:
    """Export the attempts (oldest first) as CSV or xAPI statements; abandoned attempts are marked as such."""
    from anatomy_models.atomic import atomic_path
    from anatomy_models.errors import SpinesimError
    from frontends.casebook import department_catalogue
    from frontends.store import Store, records_csv
    from frontends.xapi import default_homepage, send_statements, statements, statements_json

    if lrs_url is not None and kind != "xapi":
        raise SpinesimError("--lrs sends xAPI statements", hint="add --format xapi")
    store = Store(db_url)
    user_id = store.user(trainee).id if trainee is not None else None
    found = store.attempts(user_id=user_id, scenario_id=scenario_id,
                           since=since.replace(tzinfo=timezone.utc) if since else None)
    catalogue = department_catalogue(store, scenario_folders).scenarios
    if kind == "csv":
        text = records_csv(found, {key: case.procedure for key, case in catalogue.items()})
        counted = f"{len(found)} attempt{'s' if len(found) != 1 else ''}"
    else:
        cases = {key: (case.title, case.brief) for key, case in catalogue.items()}
        made = statements(found, cases, homepage or default_homepage())
        text = statements_json(made)
        counted = f"{len(made)} xAPI statement{'s' if len(made) != 1 else ''} of {len(found)} attempts"
    with atomic_path(output) as temporary:
        temporary.write_text(text, encoding="utf-8")
    out.print(f"Wrote {counted} to {user_text(output)}.")
    if lrs_url is not None:
        credentials = os.environ.get(lrs_auth_env)
        if not credentials:
            raise SpinesimError(f"the environment variable {lrs_auth_env} holds no LRS credentials",
                                hint=f"set {lrs_auth_env}=key:secret (as the LRS issued them), or name another "
                                     "variable with --lrs-auth-env")
        sent = send_statements(made, lrs_url, credentials)
        out.print(f"Sent {sent} statement{'s' if sent != 1 else ''} to {user_text(lrs_url)}.")
