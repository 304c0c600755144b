"""``spinesim serve``: the simulator in a browser, for trainees and instructors."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything beyond 127.0.0.1 requires every user to log in.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--db", "db_url", help="Database URL: sqlite:///path.db or postgresql://user@host/name "
                                     "(default sqlite:///$SPINESIM_HOME/spinesim.db).")
@click.option("--scenario", help="Case selected when the simulator opens for a user with no assigned case still to "
                                 "do (an id from the library, a --scenarios folder or the department's cases); "
                                 "a trainee's next assignment comes first. Default: ilesi-default.")
@click.option("--scenarios", "scenario_folders", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also serve the scenario files (*.yaml) of this folder, grouped under its name in the picker; "
                   "repeatable. A file that does not validate is left out with a warning.")
@click.option("--require-login", is_flag=True, help="Everyone logs in, also on 127.0.0.1 (a shared machine).")
@click.option("--anatomy", "anatomy_source", help="Use this stored anatomy for every scenario instead of its own.")
@click.option("--spare", default=1, show_default=True, type=click.IntRange(0, 16),
              help="Workstations kept warm (patient loaded) so that a login gets one at once; each costs the "
                   "memory of an idle workstation.")
def serve(host: str, port: int, db_url: str | None, scenario: str | None, scenario_folders: tuple[Path, ...],
          require_login: bool, anatomy_source: str | None, spare: int) -> None:
    """Serve the trainee simulator and the instructors' review at http://HOST:PORT/.

    On 127.0.0.1 (the default) the person at this machine may work without logging in. On any other
    address everyone logs in (add users with `spinesim users add`). Each logged-in user gets a
    workstation process of their own. Cases come from the built-in library, each --scenarios folder and the
    department's own cases in the database (`spinesim cases`, the instructor's Cases tab).
    """
    # Light checks: the portal process never loads an anatomy (its workstations do).
    from anatomy_models.errors import SpinesimError
    from anatomy_models.store import anatomy_folder
    from frontends.casebook import department_catalogue
    from frontends.cli import console, user_text
    from frontends.store import Store
    from frontends.web.portal import PortalConfig
    from frontends.web.portal import serve as run_portal

    catalogue = department_catalogue(Store(db_url), [str(folder) for folder in scenario_folders])
    for warning in catalogue.warnings:
        console.print(f"[yellow]warning:[/] {user_text(warning)} (left out)", highlight=False, soft_wrap=True)
    if scenario is not None and scenario not in catalogue.scenarios:
        raise SpinesimError(f"no scenario called {scenario!r} in the library, the --scenarios folders or the "
                            "department's cases",
                            hint=f"scenarios: {', '.join(sorted(catalogue.scenarios))}")
    if anatomy_source is not None:
        check_patient(anatomy_folder(anatomy_source))
    run_portal(PortalConfig(host=host, port=port, db_url=db_url, anatomy=anatomy_source, scenario=scenario,
                            scenario_folders=[str(folder.resolve()) for folder in scenario_folders],
                            require_login=require_login, spare=spare))


def check_patient(folder: Path | None) -> None:
    """Refuse, before any workstation starts, a stored anatomy a workstation could not work with: one
    with neither landmarks nor vertebra labels to estimate them from (targets and views need them).
    Reads the manifest only (``None``: the built-in patient, which has both).

    Raises
    ------
    SpinesimError
        If the manifest cannot be read or names neither landmarks nor a label map.
    """
    from anatomy_models.errors import SpinesimError
    from anatomy_models.home import MANIFEST

    if folder is None:
        return
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpinesimError(f"cannot read the anatomy's manifest ({error})", path=manifest_path,
                            hint="re-import or regenerate the anatomy") from None
    if not isinstance(manifest, dict) or not (manifest.get("landmarks") or manifest.get("labels")):
        raise SpinesimError("the anatomy has neither landmarks nor vertebra labels to estimate them from",
                            path=manifest_path, hint="import it with its label map (e.g. a TotalSegmentator "
                            "segmentation) so that targets and C-arm views can be found")
