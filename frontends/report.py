"""The attempt report as one self-contained HTML page (no network: styles, script, images and 3D data
are all inside it).

The page shows the grade and its gates, the feedback, the final fluoroscopy views with the needle
(and the contrast run the trainee took, and the last ultrasound frame if a probe was placed), rendered now from the replayed attempt with the target's
acceptance zone and the expert path drawn on them, a 3D reveal of the needle's path among the
anatomy the trainee could not see (flagged structures highlighted), and tables of the safety flags,
near misses, metrics, grade, expert comparison and every action. Unlike :func:`scoring.report.score`
this module renders images.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from anatomy_models.anatomy import Anatomy
from anatomy_models.atomic import atomic_path
from anatomy_models.structures import LEVELS, clinical_name
from frontends.pictures.encode import jpeg_data_url
from frontends.pictures.overlay import Segment, with_overlay
from frontends.pictures.preview import target_marks
from frontends.pictures.scene3d import Part, Scene, SceneMarker, SceneMesh, ScenePolyline, anatomy_scene, needle_tube
from scenarios.schema import Scenario
from scoring.checklist import checklist_points
from scoring.metrics import NEEDLE_MOVES
from scoring.report import Report, checklist_rows, metric_rows, quantity_text, rating_rows, report_of
from simulator.imaging.carm import CArm
from simulator.imaging.fluoro import render_fluoro
from simulator.needle.contrast import is_artery
from simulator.needle.shaft import Needle
from simulator.session.actions import LogContents
from simulator.session.history import Attempt, replay_attempt
from simulator.session.scans import annotate, render_scan
from simulator.session.shots import render_shot, shown_at
from simulator.session.words import event_title

EXPERT_COLOR = (120, 230, 120)
SEVERITY_COLOR = {"critical": (1.0, 0.15, 0.15), "major": (1.0, 0.5, 0.05), "near_miss": (1.0, 0.78, 0.2)}


# --------------------------------------------------------------------------- images
def report_images(attempt: Attempt, report: Report, *, pixels: int = 512) -> list[tuple[str, Image.Image]]:
    """(caption, picture) of the final views with the needle, of the first contrast run and, when a
    probe was placed, of the final ultrasound frame."""
    session = attempt.session
    target = session.target
    markers, segments = target_marks(target)
    markers = [m for m in markers if m.label != "entry"]
    segments = []
    if report.expert.available:
        segments.append(Segment(report.expert.expert_entry, tuple(np.asarray(report.expert.expert_entry)
                                + report.expert.expert_depth_mm * np.asarray(report.expert.expert_direction)),
                                EXPERT_COLOR, dashed=True))
    final = attempt.final
    pictures = []
    seen: list[CArm] = []
    for number, view in enumerate(target.views, start=1):
        if any(np.allclose(view.carm.projection_matrix, c.projection_matrix) for c in seen):
            continue
        seen.append(view.carm)
        carm = view.carm.with_(detector_pixels=pixels)
        image = render_fluoro(session.anatomy, carm, final.needle, session.contrast(), seed=attempt.scenario.seed + number)
        pictures.append((f"{view.name}: final needle position", with_overlay(image, markers, segments)))
    run = _first_contrast_run(attempt)
    if run is not None:
        step, injection_t = run
        # The image the trainee saw: the same shot rendered again (same seed, same held frame).
        mode, seconds = step.action.mode, step.action.seconds
        held = bool(step.action.held)
        image = render_shot(session, step.after, mode, seconds, step.action.frames_per_second, pixels=pixels,
                            held=held)
        caption = "DSA" if mode == "dsa" else "live"
        after = shown_at(step.after, mode, seconds, held) - injection_t
        pictures.append((f"contrast run ({caption}, {after:.1f} s after injecting at {injection_t:.0f} s)",
                         with_overlay(image, markers, [])))
    scan = render_scan(session, final)
    if scan is not None:
        view = final.probe.view or "free-hand probe"
        pictures.append((f"ultrasound, {view}: final needle position", Image.fromarray(annotate(scan))))
    return pictures


def _first_contrast_run(attempt: Attempt):
    """The first live or DSA shot within the check window after an injection, and the injection time."""
    for index, step in enumerate(attempt.steps):
        if step.action.type != "inject_contrast":
            continue
        for later in attempt.steps[index + 1:]:
            if later.action.type in NEEDLE_MOVES:
                break
            if later.action.type == "fluoro_shot" and later.action.mode in ("live", "dsa"):
                return later, step.t
    return None


# --------------------------------------------------------------------------- 3D
def _named(anatomy: Anatomy, keep) -> tuple[str, ...]:
    return tuple(label.name for label in anatomy.label_table if keep(label))


def report_scene(attempt: Attempt, report: Report) -> Scene:
    """The 3D reveal: the anatomy around the target, flagged structures highlighted, the needle, the
    earlier passes, the tip's path and the expert path."""
    anatomy, target = attempt.session.anatomy, attempt.session.target
    highlights = _highlights(report)
    parts = [Part(f"bone.{level}", level, (level,), (0.92, 0.88, 0.78), tagged=True) for level in LEVELS] + [
        Part("discs", "discs", _named(anatomy, lambda l: l.tissue in ("disc_annulus", "disc_nucleus")), (0.55, 0.7, 0.85), 0.85),
        Part("flavum", "ligamentum flavum", ("ligamentum_flavum",), (0.8, 0.78, 0.35), 0.55),
        Part("facets", "facet joints", ("facet_joint",), (0.35, 0.8, 0.8), 0.9),
        Part("dural_sac", "dural sac", ("dural_sac",), (0.4, 0.6, 1.0), 0.35),
        Part("cord", "spinal cord", ("spinal_cord",), (1.0, 0.8, 0.45)),
        Part("roots", "nerve roots", ("nerve_root", "dorsal_root_ganglion"), (1.0, 0.86, 0.25)),
        # Small arteries apart from the great ones, so that decimating the aorta does not erase them.
        Part("radicular_arteries", "radicular arteries", ("radicular_artery",), (0.95, 0.12, 0.15)),
        Part("arteries", "aorta and iliac arteries",
             _named(anatomy, lambda l: l.tissue == "blood" and is_artery(l.name) and not l.name.startswith("radicular_artery")),
             (0.8, 0.1, 0.12)),
        Part("veins", "veins", _named(anatomy, lambda l: l.tissue == "blood" and not is_artery(l.name)), (0.3, 0.35, 0.85)),
        Part("skin", "skin", ("skin",), (0.93, 0.75, 0.64), 0.1),
    ] + [Part(f"flag.{name}", label, (name,), SEVERITY_COLOR[kind], 1.0, highlight=True, tagged=True)
         for name, label, kind in highlights]
    scene = anatomy_scene(anatomy, f"{report.scenario_title}: needle path", target.point, parts,
                          exclude=[name for name, _, _ in highlights])
    # From behind and toward the needle's side, level with the target: the whole path is in view.
    scene.azimuth_deg = {"left": 60.0, "right": -60.0}.get(attempt.scenario.target.side, 35.0)
    scene.elevation_deg, scene.distance_mm = 10.0, 230.0
    needle = attempt.final.needle
    if needle is not None:
        vertices, faces = needle_tube(needle, radius_mm=max(needle.spec.outer_diameter_mm / 2.0, 0.5))
        scene.add_mesh(SceneMesh("needle", "needle", vertices, faces, (0.82, 0.84, 0.88), 1.0))
        scene.markers.append(SceneMarker("tip", "tip", tuple(needle.tip.tolist()), (1.0, 0.6, 0.1), 9.0))
    for number, shaft in enumerate(_earlier_passes(attempt), start=1):
        scene.lines.append(ScenePolyline(f"pass.{number}", f"pass {number}", shaft, (0.75, 0.75, 0.8), 0.7, tagged=True))
    paths = attempt.tip_paths()
    if paths:
        points = np.concatenate([p[::4] for p, _ in paths])
        scene.lines.append(ScenePolyline("tip_path", "tip path", points, (1.0, 0.6, 0.1), 1.0))
    if report.expert.available:
        entry = np.asarray(report.expert.expert_entry)
        tip = entry + report.expert.expert_depth_mm * np.asarray(report.expert.expert_direction)
        scene.lines.append(ScenePolyline("expert", "expert path", np.array([entry, tip]), (0.45, 0.95, 0.45), 1.0))
    scene.markers.append(SceneMarker("target", "target", tuple(target.point.tolist()), (0.3, 1.0, 0.45), 11.0))
    return scene


def _highlights(report: Report) -> list[tuple[str, str, str]]:
    """(structure, label, kind) to highlight: each flagged structure and each near-miss structure."""
    found: dict[str, tuple[str, str]] = {}
    for flag in report.flags:
        if flag.severity in ("critical", "major") and flag.structure and "." in flag.structure:
            found.setdefault(flag.structure, (f"{flag.title}: {clinical_name(flag.structure)}", flag.severity))
    for approach in report.near_misses:
        if approach.near_miss and approach.structure:
            found.setdefault(approach.structure, (f"near miss {approach.shaft_mm:.1f} mm: "
                                                  f"{clinical_name(approach.structure)}", "near_miss"))
    return [(name, label, kind) for name, (label, kind) in found.items()]


def _earlier_passes(attempt: Attempt) -> list[np.ndarray]:
    """The deepest shaft of every pass before the final one, as two-point lines."""
    passes: list[Needle] = []
    current: Needle | None = None
    for _, needle in attempt.needles():
        if current is not None and (not np.allclose(needle.entry, current.entry) or
                                    not np.allclose(needle.direction, current.direction)):
            passes.append(current)
            current = None
        if current is None or needle.depth_mm > current.depth_mm:
            current = needle
    return [np.array([n.entry, n.tip]) for n in passes]


# --------------------------------------------------------------------------- the page
def _e(value: Any) -> str:
    return html.escape(str(value))


def _rows(rows: Sequence[Sequence[str]], header: Sequence[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>' for i, cell in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_body(report: Report, images: Sequence[tuple[str, Image.Image]], scene: Scene,
                scenario: Scenario | None = None) -> str:
    """The page's body HTML; ``scenario``: the case, whose difficulty and learning objectives head the page."""
    verdict = "pass" if report.passed else "fail"
    objectives = "".join(f"<li>{_e(objective)}</li>" for objective in (scenario.objectives if scenario else ()))
    case = (f'<p class="sub">difficulty: <b id="difficulty">{_e(scenario.difficulty)}</b></p>' if scenario else "") + (
        f'<p class="sub">Objectives:</p><ul class="sub" id="objectives">{objectives}</ul>' if objectives else "")
    gates = "".join(f'<li class="{"ok" if g.passed else "no"}" title="{_e(g.detail)}">{_e(g.name)}'
                    f'{"" if g.passed else ": " + _e(g.detail)}</li>' for g in report.gates)
    feedback = "".join(f'<li class="{f.level}">{_e(f.text)}</li>' for f in report.feedback)
    figures = "".join(f'<figure><img src="{jpeg_data_url(picture)}" alt="{_e(caption)}"><figcaption>{_e(caption)}'
                      "</figcaption></figure>" for caption, picture in images)
    flags = _rows([(f'<span class="sev {f.severity}">{f.severity}</span>', _e(f.title), quantity_text(f.t, "s", 0),
                    _e(f.message) + (f" (×{f.count})" if f.count > 1 else "")) for f in report.flags],
                  ("severity", "event", "time", "what happened")) if report.flags else "<p>No safety events.</p>"
    near = _rows([(_e(n.label), quantity_text(n.tip_mm, "mm"), quantity_text(n.shaft_mm, "mm"),
                   quantity_text(n.expert_shaft_mm, "mm"),
                   _e(clinical_name(n.structure) if n.structure else "–"), "near miss" if n.near_miss else "")
                  for n in report.near_misses],
                 ("structure group", "closest tip", "closest shaft", "expert shaft", "nearest structure", ""), (1, 2, 3))
    components = _rows([(_e(c.name), f"{c.weight * 100:.0f}%", f'<div class="bar"><span style="width:{c.score * 100:.0f}%">'
                         "</span></div>", f"{c.points:.1f}") for c in report.components]
                       + [(f"{_e(name)} (deduction)", "", "", f"−{points:.1f}") for name, points in report.deductions.items()
                          if points],
                       ("part", "weight", "score", "points"), (1, 3))
    expert = report.expert
    comparison = (_rows([("Skin entry distance", quantity_text(expert.entry_distance_mm, "mm")),
                         ("Angle between needles", quantity_text(expert.angle_deg, "°")),
                         ("Depth, yours minus expert's", quantity_text(expert.depth_difference_mm, "mm")),
                         ("Expert depth", quantity_text(expert.expert_depth_mm, "mm")),
                         ("Path length, yours / expert's", quantity_text(expert.path_ratio, "×", 2)),
                         ("Expert shots / beam time / time", f"{expert.expert_shots} / {expert.expert_fluoro_seconds:.1f} s / "
                                                             f"{expert.expert_time_s:.0f} s")],
                        ("", ""), (1,)) if expert.available else f"<p>{_e(expert.note)}</p>")
    metrics = _rows([(_e(label), _e(value)) for label, value in metric_rows(report)], ("", ""))
    checklist, rating = _checklist_table(report), _rating_table(report)
    timeline = _rows([(f"{entry.t:.1f} s", _e(entry.action), _e(entry.summary),
                       "".join(f'<span class="event {e.severity}">{_e(event_title(e.kind))}: {_e(e.message)}</span>'
                               for e in entry.events)) for entry in report.timeline],
                     ("time", "action", "details", "events"))
    scene_json = json.dumps(scene.to_json(), separators=(",", ":")).replace("</", "<\\/")
    target = report.target
    return f"""
<header class="card">
  <div class="grade {verdict}"><div class="number">{report.grade:.0f}</div><div class="verdict">{verdict.upper()}</div></div>
  <div>
    <h1>{_e(report.scenario_title)}</h1>
    <p class="sub">{_e(report.procedure.replace('_', ' '))} · target: {_e(target.description)} ·
       scenario <code>{_e(report.scenario_id)}</code> · seed {report.seed}</p>
    {case}
    <ul class="gates">{gates}</ul>
  </div>
</header>
<section class="card"><h2>Feedback</h2><ul class="feedback">{feedback}</ul></section>
<section class="card"><h2>Final images</h2>
  <div class="images">{figures}</div>
  <p class="hint">Green dot and blue ring: the target and its acceptance zone ({target.zone_radius_mm:g} mm);
     dashed green line: the expert path. Rendered from the attempt's log.</p>
</section>
<section class="card"><h2>3D reveal: the needle among the hidden anatomy</h2>
  <div class="viewer"><div class="stage"><canvas id="scene3d"></canvas></div><div class="legend" id="legend"></div></div>
  <p class="hint">Drag to rotate, wheel to zoom, shift-drag to pan, double-click to reset. Orange: the needle tip and
     the path it travelled; grey lines: earlier passes; green: the expert path and the target; red/orange surfaces:
     structures involved in a safety event or near miss.</p>
  <script type="application/json" id="scene-data">{scene_json}</script>
</section>
{checklist}
{rating}
<div class="columns">
  <section class="card"><h2>Safety events</h2>{flags}</section>
  <section class="card"><h2>Grade</h2>{components}</section>
</div>
<section class="card"><h2>Closest approaches</h2>{near}</section>
<div class="columns">
  <section class="card"><h2>Metrics</h2>{metrics}</section>
  <section class="card"><h2>Compared with the expert path</h2>{comparison}</section>
</div>
<section class="card"><details><summary>Timeline ({len(report.timeline)} actions)</summary>{timeline}</details></section>
<footer>spinesim attempt report · anatomy {_e(report.anatomy)} · report format {report.spinesim_report}</footer>
"""


def _checklist_table(report: Report) -> str:
    """The checklist card: each step, done / partly / not done, why, and the log steps that show it."""
    if not report.checklist:
        return ""
    rows = _rows([(_e(step), f'<span class="status {item.status}">{_e(status)}</span>', _e(detail),
                   f'<span class="evidence">{_e(evidence)}</span>')
                  for item, (step, status, detail, evidence) in zip(report.checklist, checklist_rows(report))],
                 ("step", "", "why", "evidence (log step, time, what it showed)"))
    return (f'<section class="card"><h2>Checklist: {checklist_points(report.checklist):g} of {len(report.checklist)} '
            f'steps</h2>{rows}<p class="hint">Spine Intervention Society technique steps (trajectory view, '
            "multiplanar confirmation, contrast under live fluoroscopy); done counts 1, partly ½. Reported beside "
            "the grade, not part of it.</p></section>")


def _rating_table(report: Report) -> str:
    """The global rating scale card: each item's 1-5 score, the anchor it meets and what was measured."""
    rating = report.global_rating
    if rating is None:
        return ""
    rows = _rows([tuple(_e(cell) for cell in row) for row in rating_rows(report)],
                 ("item", "score", "anchor", "measured"), (1,))
    return (f'<section class="card"><h2>Global rating scale: {rating.total} of {rating.maximum}</h2>{rows}'
            '<p class="hint">OSATS-style items, 1-5 against written anchors, computed from the log.</p></section>')


def report_html(attempt: Attempt, report: Report, *, pixels: int = 512) -> str:
    """The whole self-contained page for a replayed attempt and its report."""
    template = resources.files("assets").joinpath("report.html").read_text(encoding="utf-8")
    viewer = resources.files("assets").joinpath("viewer3d.js").read_text(encoding="utf-8")
    body = report_body(report, report_images(attempt, report, pixels=pixels), report_scene(attempt, report),
                       attempt.scenario)
    page = template.replace("@TITLE@", _e(f"{report.scenario_title}: {report.grade:.0f} ({'pass' if report.passed else 'fail'})"))
    return page.replace("@VIEWER_JS@", viewer).replace("@BODY@", body)


def write_report(scenario: Scenario, anatomy: Anatomy, log: LogContents | Sequence[Any], path: str | Path, *,
                 pixels: int = 512) -> Report:
    """Score the attempt and write its HTML report to ``path`` (atomically); returns the report."""
    attempt = replay_attempt(scenario, anatomy, log)
    report = report_of(attempt)
    page = report_html(attempt, report, pixels=pixels)
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return report

