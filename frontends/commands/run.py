"""``spinesim run``: replay a scripted attempt at a scenario, or print the expert path's actions."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy
from anatomy_models.structures import clinical_name
from frontends.cli import OutputPath, user_text
from scenarios.schema import load_scenario, scenario_directory
from simulator.session.actions import LogWriter, read_log
from simulator.session.words import event_title

out = Console(soft_wrap=True)
_SEVERITY_STYLE = {"info": "", "warning": "yellow", "unsafe": "bold red"}


@click.command()
@click.argument("scenario")
@click.option("--actions", "actions_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines file of actions to replay.")
@click.option("--expert", is_flag=True, help="Plan the expert path and use (or print) its actions.")
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path),
              help="With --expert: write the expert actions here (JSON Lines) instead of replaying them.")
@click.option("--log", "log_path", type=OutputPath(dir_okay=False, path_type=Path),
              help="Write the replayed attempt's log (with its header) here.")
@click.option("--anatomy", "anatomy_source", help="Use this stored anatomy or anatomy folder instead of the scenario's.")
@click.option("--images", "images_dir", type=OutputPath(file_okay=False, path_type=Path),
              help="Write a PNG for every fluoroscopy shot into this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print events and the final state as JSON.")
def run(scenario: str, actions_path: Path | None, expert: bool, output: Path | None, log_path: Path | None,
        anatomy_source: str | None, images_dir: Path | None, as_json: bool) -> None:
    """Replay the actions in --actions (or the expert path) on SCENARIO (a library id or YAML file).

    Prints the events as they happen and the final state.
    """
    from simulator.case.planner import expert_actions, plan_trajectory
    from simulator.case.targets import target_for
    from simulator.needle.trace import tracer_for
    from simulator.session.fold import scenario_of_log
    from simulator.session.replay import replay

    if (actions_path is None) == (not expert):
        raise SpinesimError("give either --actions FILE or --expert", hint="see `spinesim run --help`")
    if output is not None and not expert:
        raise SpinesimError("-o/--output only goes with --expert")
    chosen = load_scenario(scenario)
    log = None if expert else read_log(actions_path)
    # The attempt's patient: the one the log's seed drew (the scenario's own seed for the expert path).
    patient = chosen if log is None else scenario_of_log(chosen, log.header, actions_path)
    anatomy = load_anatomy(anatomy_source) if anatomy_source else patient.load_patient(scenario_directory(scenario))
    if expert:
        tracer = tracer_for(anatomy)
        target = target_for(chosen, anatomy, tracer)
        trajectory = plan_trajectory(tracer, target, chosen.needle.spec())
        records = expert_actions(chosen, target, trajectory)
        if output is not None:
            writer = LogWriter(output)
            for record in records:
                writer.append(record)
            writer.close()
            out.print(f"Wrote {len(records)} expert actions to {output} (entry {[round(v, 1) for v in trajectory.entry]}, "
                      f"depth {trajectory.depth_mm:.1f} mm, {trajectory.angle_from_textbook_deg:.1f} deg from textbook)", markup=False)
            return
        log = records
    else:
        if log.truncated:
            out.print(f"[yellow]warning:[/] {user_text(log.truncated)}")
    events = []
    shown = _step_printer(events, images_dir, as_json)
    session = replay(chosen, anatomy, log, on_step=shown, log_path=log_path)
    session.close()
    if as_json:
        out.print_json(json.dumps({"events": [e.to_json() for e in events], "state": session.state.to_json()}))
    else:
        _print_state(session)


def _print_state(session) -> None:
    state = session.state.to_json()
    table = Table("final state", "", show_header=False)
    for key in ("t", "tip_structure", "in_target", "tip_to_target_mm", "passes", "redirects", "bone_contacts",
                "fluoro_shots", "fluoro_seconds", "lor_checks", "contrast_ml", "medication_ml", "finished"):
        value = clinical_name(state[key]) if key == "tip_structure" and state[key] else state[key]
        table.add_row(key, user_text(value))
    if state["needle"]:
        table.add_row("tip (LPS mm)", user_text(state["needle"]["tip"]))
        table.add_row("depth (mm)", user_text(state["needle"]["depth_mm"]))
    table.add_row("target", user_text(session.target.description))
    lesions = [e for e in session.events if e.kind == "lesion"]
    if lesions:
        table.add_row("lesions", user_text(f"{len(lesions)}, {100 * lesions[-1].data['coverage']:.0f}% of the nerve's "
                                           "course covered"))
    table.add_row("unsafe events", user_text(", ".join(event_title(e.kind) for e in session.unsafe_events()) or "none"))
    out.print(table)


def _step_printer(events: list, images_dir: Path | None, as_json: bool):
    """A callback for each folded step: collects its events into ``events``, prints them (unless
    ``as_json``) and writes the fluoroscopy image of each shot into ``images_dir``
    (:func:`simulator.session.shots.render_shot`: the same pixels as the web app's monitor)."""
    from simulator.session.shots import render_shot

    if images_dir is not None:
        images_dir.mkdir(parents=True, exist_ok=True)

    def shown(session, step) -> None:
        for event in step.events:
            events.append(event)
            if images_dir is not None and event.kind == "fluoro_shot":
                image = render_shot(session, step.after, event.data["mode"], step.action.seconds,
                                    step.action.frames_per_second, held=bool(step.action.held))
                image.save_png(images_dir / f"shot-{event.data['shot']:03d}-{event.data['mode']}.png")
            if not as_json:
                style = _SEVERITY_STYLE[event.severity]
                text = user_text(f"{event.t:7.1f} s  {event_title(event.kind):<22} {event.debrief}")
                out.print(f"[{style}]{text}[/]" if style else text, highlight=False)

    return shown
