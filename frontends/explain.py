"""Patient explanations: one offline page that shows a patient what their injection will do.

:func:`write_explanation` builds the page for a scenario and an anatomy (the patient's own when it
was imported from their CT): the procedure in plain words from an editable template
(``assets/explain/<procedure>.md``) filled with the case's level and side, the scenario's
patient-facing text, an interactive 3D model of the spine with the target and the needle labelled
(``assets/viewer3d.js``), simulated fluoroscopy views with plain labels ("what your doctor sees")
and a short animation of the needle reaching the target and the medicine spreading.

The needle is the expert path's (:mod:`simulator.case.planner`), replayed as a session so that the
contrast spreads as the simulator models it, or the final needle of a given attempt log. An
imported CT that has vertebra labels but no landmarks gets approximate landmarks measured from the
labels (:mod:`anatomy_models.label_landmarks`); the page then says the spot is an estimate.

Nothing about the patient reaches the page except a name the clinician passes explicitly: no
anatomy name, folder or metadata (which an import has de-identified anyway).

Templates are Markdown with ``{{ placeholder }}`` fields (:func:`case_words` lists them); HTML
comments are for editors and sources and never reach the page; a line ``{{ pictures }}`` marks
where the 3D model, the pictures and the animation go.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
from markdown_it import MarkdownIt
from PIL import Image, ImageDraw

from anatomy_models.anatomy import Anatomy
from anatomy_models.atomic import atomic_path
from anatomy_models.errors import SpinesimError
from anatomy_models.label_landmarks import with_label_landmarks
from anatomy_models.structures import LEVELS, level_below
from frontends.pictures.encode import data_url, jpeg_data_url
from frontends.pictures.overlay import Callout, Marker, Segment, label_font, with_overlay
from frontends.pictures.scene3d import Part, Scene, SceneAnnotation, SceneMarker, SceneMesh, anatomy_scene, needle_tube
from scenarios.schema import NERVE_PROCEDURES, Scenario
from simulator.case.planner import expert_actions, plan_trajectory
from simulator.case.targets import View, target_for
from simulator.imaging.carm import CArm
from simulator.imaging.fluoro import Display, FluoroImage, render_fluoro
from simulator.needle.shaft import Needle
from simulator.needle.trace import tracer_for
from simulator.session.actions import LogContents
from simulator.session.fold import Session
from simulator.session.replay import replay

PICTURES = "pictures"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_PICTURES_LINE = re.compile(r"\s*\{\{\s*" + PICTURES + r"\s*\}\}\s*")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd"}

# Colours of the labels (RGB 0-255): calm and distinct on grey X-ray images.
TARGET_COLOR = (90, 220, 120)
NEEDLE_COLOR = (255, 196, 60)
BONE_COLOR = (150, 200, 255)
# The animation: frames of the needle going in, then of the dye spreading (s after injecting) [ED].
ADVANCE_FRAMES = 9
SPREAD_SECONDS = (0.5, 1.5, 3.0, 6.0)
ANIMATION_PIXELS = 320
# The film's view: the path's projection plus this margin (mm at the isocentre) fills at most this
# fraction of the field; the field widens up to MAX_WIDEN times (a larger intensifier) [ED].
PATH_MARGIN_MM = 30.0
FIELD_FILL = 0.8
MAX_WIDEN = 1.8
# The dye's tint: colour, strongest opacity, and the extra line integral that gets it (dimensionless) [ED].
DYE_COLOR = (60, 200, 255)
DYE_OPACITY = 0.75
DYE_FULL_TINT = 0.15


# --------------------------------------------------------------------------- words
def _vertebra_words(level: str) -> str:
    """``L4`` -> ``4th lumbar vertebra``; ``S1`` -> ``sacrum``."""
    if level == "S1":
        return "sacrum (the bone at the base of your spine)"
    number = int(level[1:])
    region = {"T": "thoracic", "L": "lumbar"}[level[0]]
    return f"{_ORDINAL.get(number, f'{number}th')} {region} vertebra"


def case_words(scenario: Scenario) -> dict[str, str]:
    """The values of the template placeholders for ``scenario``.

    ``level`` (``L4–L5``), ``upper``/``lower`` and ``upper_words``/``lower_words`` (the two
    vertebrae), ``side`` (left, right or middle), ``side_words`` (``on the left side``), ``nerve``
    (the nerve treated or tested), ``bone``/``bone_words`` (the vertebra the needle ends on).

    Examples
    --------
    >>> from scenarios.schema import load_scenario
    >>> words = case_words(load_scenario("tfesi-default"))
    >>> words["level"], words["side_words"], words["nerve"]
    ('L4–L5', 'on the left side', 'L4 nerve root')
    """
    target = scenario.target
    if scenario.procedure in NERVE_PROCEDURES:
        upper = target.nerve_level
        lower = level_below(upper)
        nerve, bone = target.nerve, lower
    elif target.level is None:  # the sacrum: the sacroiliac joint or the sacral hiatus
        upper = lower = bone = "S1"
        nerve = "sacral nerve roots" if scenario.procedure == "caudal_epidural" else "nerves of the joint"
    else:
        upper, lower = target.level.split("-")
        nerve, bone = f"{upper} nerve root", upper
    side = "middle" if target.side == "midline" else target.side
    level = "sacrum" if target.level is None and target.nerve is None else f"{upper}–{lower}"
    return {"level": level, "upper": upper, "lower": lower, "upper_words": _vertebra_words(upper),
            "lower_words": _vertebra_words(lower), "side": side,
            "side_words": "in the middle" if side == "middle" else f"on the {side} side",
            "nerve": nerve, "bone": bone, "bone_words": _vertebra_words(bone)}


@dataclass(frozen=True)
class Leaflet:
    """A procedure's text for one case: title, opening paragraph and sections before and after the
    pictures, each section ``(heading, HTML)``."""

    title: str
    opening_html: str
    before: list[tuple[str, str]]
    after: list[tuple[str, str]]


def template_path(procedure: str):
    """The template file of ``procedure`` (a package resource)."""
    return resources.files("assets").joinpath("explain", f"{procedure}.md")


def leaflet(scenario: Scenario, template: str | None = None) -> Leaflet:
    """The procedure's template (or ``template`` text) filled in for ``scenario`` and rendered.

    Raises
    ------
    SpinesimError
        For a placeholder the template does not know, or a template without a title or without the
        ``{{ pictures }}`` line; the error names the file and line.
    """
    source = template_path(scenario.procedure)
    name = f"assets/explain/{scenario.procedure}.md" if template is None else "the template"
    text = source.read_text(encoding="utf-8") if template is None else template
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    words = case_words(scenario)
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        for found in _PLACEHOLDER.finditer(line):
            if found[1] not in words and found[1] != PICTURES:
                raise SpinesimError(f"unknown placeholder {{{{ {found[1]} }}}}", path=name, where=f"line {number}",
                                    hint=f"use one of {', '.join(sorted(words))}, or {{{{ {PICTURES} }}}} on its own line")
    split = [i for i, line in enumerate(lines) if _PICTURES_LINE.fullmatch(line)]
    if len(split) != 1:
        raise SpinesimError(f"the template needs exactly one line '{{{{ {PICTURES} }}}}' (found {len(split)})", path=name,
                            hint="put it on a line of its own where the 3D model and the pictures belong")
    filled = [_PLACEHOLDER.sub(lambda m: words.get(m[1], m[0]), line) for line in lines]
    head, tail = filled[:split[0]], filled[split[0] + 1:]
    title_line = next((i for i, line in enumerate(head) if line.startswith("# ")), None)
    if title_line is None:
        raise SpinesimError("the template has no title line ('# Title')", path=name)
    opening, before = _sections(head[title_line + 1:])
    trailing, after = _sections(tail)
    return Leaflet(head[title_line][2:].strip(), opening + trailing, before, after)


def _sections(lines: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """(HTML before the first ``##``, [(heading, HTML)] of each ``##`` section)."""
    markdown = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable("replacements").enable("smartquotes")
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        else:
            sections[-1][1].append(line)
    rendered = [(heading, markdown.render("\n".join(body)).strip()) for heading, body in sections]
    return rendered[0][1], rendered[1:]


# --------------------------------------------------------------------------- the needle
@dataclass(frozen=True)
class ExplainedAttempt:
    """The attempt a page shows: the expert's or a given log's, replayed.

    ``needle`` is the last needle in the patient; ``injection_t`` the time of the first contrast
    injection (s), None if there was none; ``estimated`` is True when the anatomy's landmarks were
    measured from its labels.
    """

    scenario: Scenario
    session: Session
    needle: Needle
    injection_t: float | None
    from_log: bool
    estimated: bool

    @property
    def anatomy(self) -> Anatomy:
        return self.session.anatomy


def explained_attempt(scenario: Scenario, anatomy: Anatomy, log: LogContents | None = None) -> ExplainedAttempt:
    """Replay the expert path (or the attempt in ``log``) on ``anatomy``.

    Raises
    ------
    SpinesimError
        If the anatomy lacks what the target needs (landmarks, or vertebra labels to measure them
        from), no safe path exists, or the attempt never placed a needle.
    """
    anatomy = with_label_landmarks(anatomy)  # an import measures them already; an older one may not have
    estimated = "derived_landmarks" in anatomy.metadata
    if log is None:
        tracer = tracer_for(anatomy)
        target = target_for(scenario, anatomy, tracer)
        log = expert_actions(scenario, target, plan_trajectory(tracer, target, scenario.needle.spec()))
        from_log = False
    else:
        tracer, from_log = None, True
    session = replay(scenario, anatomy, log, tracer=tracer)
    needles = [state.needle for state in session.states if state.needle is not None]
    if not needles:
        raise SpinesimError("the attempt never placed a needle, so there is nothing to explain", path=log.path if from_log else None,
                            hint="give an attempt that places the needle, or leave out --attempt for the expert path")
    injection = next((a.t for a in session.actions if a.type == "inject_contrast"), None)
    return ExplainedAttempt(session.scenario, session, needles[-1], injection, from_log, estimated)


# --------------------------------------------------------------------------- pictures
@dataclass(frozen=True)
class Figure:
    """A picture with its caption and its text alternative."""

    caption: str
    alt: str
    picture: Image.Image


def _view_words(view: View) -> str:
    name = view.name.lower()
    if name.startswith("ap"):
        return "Straight on, looking at your back"
    if name.startswith("lateral"):
        return "From the side"
    if name.startswith("contralateral"):
        return "At an angle from the other side, to check how deep the needle is"
    return "At an angle, looking along the path of the needle"


def _callouts(attempt: ExplainedAttempt, words: dict[str, str]) -> list[Callout]:
    needle = attempt.needle
    bone = attempt.anatomy.landmark(f"{words['bone']}.body.center")
    return [Callout(tuple(attempt.session.target.point), "where the medicine goes", TARGET_COLOR),
            Callout(tuple(needle.entry + 0.45 * needle.depth_mm * needle.direction), "the needle", NEEDLE_COLOR),
            Callout(tuple(bone), f"bone of your spine ({words['bone']})", BONE_COLOR)]


def _target_ring(attempt: ExplainedAttempt) -> Marker:
    return Marker(tuple(attempt.session.target.point), TARGET_COLOR, "ring", 3.0)


def doctor_views(attempt: ExplainedAttempt, *, pixels: int = 448) -> list[Figure]:
    """The target's distinct C-arm views with the final needle and plain labels."""
    words = case_words(attempt.scenario)
    figures, seen = [], []
    for number, view in enumerate(attempt.session.target.views, start=1):
        if any(np.allclose(view.carm.projection_matrix, c.projection_matrix) for c in seen):
            continue
        seen.append(view.carm)
        image = render_fluoro(attempt.anatomy, view.carm.with_(detector_pixels=pixels), attempt.needle,
                              seed=attempt.scenario.seed + number)
        picture = with_overlay(image, [_target_ring(attempt)], callouts=_callouts(attempt, words))
        caption = _view_words(view)
        alt = (f"Simulated X-ray picture of your lower spine, {caption[0].lower() + caption[1:]}. The bones show "
               f"white. The needle ends at a green circle {words['side_words']} at the {words['level']} level, "
               "where the medicine goes.")
        figures.append(Figure(caption, alt, picture))
    return figures


def _banner(picture: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(picture)
    size = max(11, picture.width // 22)
    font = label_font(size)
    box = draw.textbbox((0, 0), text, font=font)
    pad = size // 3
    draw.rectangle([0, 0, picture.width, box[3] - box[1] + 2 * pad], fill=(14, 20, 28))
    draw.text((pad - box[0], pad - box[1]), text, fill=(255, 255, 255), font=font)
    return picture


def _whole_path_view(carm: CArm, needle: Needle, pixels: int) -> CArm:
    """``carm`` aimed at the middle of the needle's path, its field widened (a larger intensifier) when
    the path would not fit, so that the film shows the needle from the skin to the target."""
    carm = carm.with_(isocenter=tuple((needle.entry + needle.tip) / 2.0), detector_pixels=pixels)
    field_mm = carm.detector_size_mm * carm.source_to_isocenter_mm / carm.source_to_detector_mm
    ends = carm.project(np.array([needle.entry, needle.tip])) * carm.pixel_size_mm  # at the detector, mm
    needed_mm = float(np.linalg.norm(ends[1] - ends[0])) * carm.source_to_isocenter_mm / carm.source_to_detector_mm
    widen = (needed_mm + PATH_MARGIN_MM) / (FIELD_FILL * field_mm)
    return carm.with_(detector_size_mm=carm.detector_size_mm * min(max(widen, 1.0), MAX_WIDEN))


def _with_dye(picture: Image.Image, plain: FluoroImage, dyed: FluoroImage) -> Image.Image:
    """``picture`` with the dye's own shadow (its extra line integral over ``plain``) tinted in."""
    extra = np.clip((dyed.line_integrals - plain.line_integrals) / DYE_FULL_TINT, 0.0, 1.0)[..., None]
    pixels = np.asarray(picture, dtype=np.float32)
    tinted = pixels * (1.0 - DYE_OPACITY * extra) + np.array(DYE_COLOR, dtype=np.float32) * DYE_OPACITY * extra
    return Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8))


def _needle_line(needle: Needle) -> Segment:
    """The needle's shaft in the skin drawn in colour: a thin steel line is hard to see on a phone."""
    return Segment(tuple(needle.entry), tuple(needle.tip), NEEDLE_COLOR, width_px=3)


def needle_animation(attempt: ExplainedAttempt, *, pixels: int = ANIMATION_PIXELS) -> bytes:
    """A looping GIF on the depth view: the needle going in, then the dye spreading (if injected).

    The view is aimed at the middle of the path so that the whole needle shows. Frames are rendered
    without quantum noise: calmer to watch, and unchanged pixels between frames keep the GIF small.
    The dye is tinted so that a patient can tell it from bone.
    """
    needle, target = attempt.needle, _target_ring(attempt)
    depth_view = attempt.session.target.views[-1].carm.with_(detector_pixels=pixels)
    view = _whole_path_view(depth_view, needle, pixels)
    # Grey levels between those of the usual view of the spine (bone and soft tissue at the two ends) and of
    # this wider one (soft tissue grey, bone flat): both the skin and the bone read.
    wide = render_fluoro(attempt.anatomy, view, dose=None).window
    spine = render_fluoro(attempt.anatomy, depth_view, dose=None).window
    display = Display(window=(0.5 * (wide[0] + spine[0]), spine[1]))
    goes = Callout(tuple(attempt.session.target.point), "where the medicine goes", TARGET_COLOR)
    shaft = Callout(tuple(needle.entry + 0.3 * needle.depth_mm * needle.direction), "the needle", NEEDLE_COLOR)
    frames, durations = [], []
    for fraction in np.linspace(0.0, 1.0, ADVANCE_FRAMES):
        depth = needle.depth_mm * (1.0 - (1.0 - fraction) ** 2)  # slows down toward the target
        moving = Needle(needle.entry, needle.direction, depth, needle.spec, bevel_roll_deg=needle.bevel_roll_deg)
        image = render_fluoro(attempt.anatomy, view, moving, dose=None, display=display)
        callouts = [goes, shaft] if fraction == 1.0 else [goes]
        frames.append(_banner(with_overlay(image, [target], [_needle_line(moving)], callouts), "1. The needle is guided in"))
        durations.append(350)
    durations[-1] = 1500
    if attempt.injection_t is not None:
        plain = render_fluoro(attempt.anatomy, view, needle, dose=None, display=display)
        picture = with_overlay(plain, [target], [_needle_line(needle)])
        for seconds in SPREAD_SECONDS:
            dyed = render_fluoro(attempt.anatomy, view, needle, attempt.session.contrast(attempt.injection_t + seconds),
                                 dose=None, display=display)
            frames.append(_banner(_with_dye(picture, plain, dyed), "2. The dye shows where the medicine spreads"))
            durations.append(700)
        durations[-1] = 2500
    buffer = io.BytesIO()
    palette = [frame.convert("P", palette=Image.Palette.ADAPTIVE, colors=128) for frame in frames]
    palette[0].save(buffer, format="GIF", save_all=True, append_images=palette[1:], duration=durations, loop=0,
                    optimize=True, disposal=1)
    return buffer.getvalue()


# --------------------------------------------------------------------------- 3D
def spine_scene(attempt: ExplainedAttempt) -> Scene:
    """The spine around the target with the needle, the target and where the needle goes in."""
    anatomy, target, needle = attempt.anatomy, attempt.session.target, attempt.needle
    named = {level: "sacrum" if level == "S1" else level for level in LEVELS}
    parts = [Part(f"bone.{level}", named[level], (level,), (0.93, 0.89, 0.8), tagged=True) for level in LEVELS] + [
        Part("discs", "discs (cushions between the bones)", tuple(
            label.name for label in anatomy.label_table if label.tissue in ("disc_annulus", "disc_nucleus")),
             (0.55, 0.72, 0.9), 0.9),
        Part("dural_sac", "sac of fluid around the nerves", ("dural_sac",), (0.45, 0.65, 1.0), 0.35),
        Part("roots", "nerves", ("nerve_root", "dorsal_root_ganglion", "spinal_cord"), (1.0, 0.85, 0.3)),
        Part("facets", "small joints (facet joints)", ("facet_joint",), (0.4, 0.82, 0.8), 0.9),
        Part("skin", "skin", ("skin",), (0.93, 0.75, 0.64), 0.12),
    ]
    scene = anatomy_scene(anatomy, "Your spine", target.point, parts)
    # From the needle's side, a little behind: the whole needle shows, from the skin to the target.
    scene.azimuth_deg = {"left": 75.0, "right": -75.0}.get(attempt.scenario.target.side, 70.0)
    scene.elevation_deg, scene.distance_mm = 12.0, 250.0
    # Drawn thicker than a real needle (0.7 mm for 22 G) so that it shows at this distance.
    vertices, faces = needle_tube(needle, radius_mm=1.2)
    scene.add_mesh(SceneMesh("needle", "the needle", vertices, faces, tuple(c / 255 for c in NEEDLE_COLOR), 1.0))
    scene.markers.append(SceneMarker("target", "where the medicine goes", tuple(target.point.tolist()),
                                     tuple(c / 255 for c in TARGET_COLOR), 12.0, tagged=False))
    scene.markers.append(SceneMarker("entry", "where the needle goes in", tuple(needle.entry.tolist()),
                                     tuple(c / 255 for c in NEEDLE_COLOR), 9.0, tagged=False))
    scene.annotations += [
        SceneAnnotation("target", "where the medicine goes", tuple(target.point.tolist()), tuple(c / 255 for c in TARGET_COLOR)),
        SceneAnnotation("entry", "the needle goes in here", tuple(needle.entry.tolist()), tuple(c / 255 for c in NEEDLE_COLOR)),
    ]
    return scene


# --------------------------------------------------------------------------- the page
def _e(value: object) -> str:
    return html.escape(str(value))


def _section(heading: str, body: str, ident: str | None = None) -> str:
    anchor = f' id="{ident}"' if ident else ""
    return f'<section class="card"{anchor}><h2>{_e(heading)}</h2>{body}</section>'


def explanation_body(attempt: ExplainedAttempt, text: Leaflet, figures: Sequence[Figure], animation: bytes,
                     scene: Scene, *, name: str | None = None) -> str:
    """The page's body HTML."""
    scenario, words = attempt.scenario, case_words(attempt.scenario)
    own_scan = "generator_version" not in attempt.anatomy.metadata
    greeting = f'<p class="for">Prepared for {_e(name)}</p>' if name else ""
    case = ""
    if scenario.patient is not None:
        case = f"<p>{_e(scenario.patient.explanation)}</p>"
        if scenario.patient.what_to_expect:
            case += f"<p>{_e(scenario.patient.what_to_expect)}</p>"
        case = _section("About your injection", case, "your-case")
    model_source = ("It was made from your own CT scan." if own_scan else
                    "It shows a typical adult spine, not your own scan.")
    estimate = ("<p class=\"note\">The marked spot is an estimate the computer worked out from the shape of the bones "
                "on your scan. Your doctor decides the exact spot on the day.</p>") if attempt.estimated else ""
    who = "a practice attempt" if attempt.from_log else "a careful, textbook approach"
    # "</" inside a script element would end it early.
    scene_json = json.dumps(scene.to_json(), separators=(",", ":")).replace("</", "<\\/")
    model = _section("Your spine in 3D", f"""
<p>This is a model of the lower part of your spine. {model_source} The yellow rod is the needle and the green
dot is where the medicine goes, {_e(words['side_words'])} at the {_e(words['level'])} level. The needle follows
{who}.</p>{estimate}
<div class="stage"><canvas id="scene3d" role="img" aria-label="Interactive 3D model of your lower spine with the
needle and the spot where the medicine goes. Use the buttons or the arrow keys to turn it."></canvas></div>
<div class="controls" role="group" aria-label="Turn the 3D model">
  <button type="button" data-rotate="-30">&#8630; Turn left</button>
  <button type="button" data-rotate="30">Turn right &#8631;</button>
  <button type="button" data-zoom="1.25">Closer</button>
  <button type="button" data-zoom="0.8">Further</button>
  <button type="button" data-reset>Start again</button>
</div>
<p class="hint">Drag the model sideways with a finger or the mouse to turn it. Tick or untick the parts below to
show or hide them.</p>
<div class="legend" id="legend"></div>
<script type="application/json" id="scene-data">{scene_json}</script>
""", "model")
    pictures = "".join(f'<figure><img src="{jpeg_data_url(f.picture)}" alt="{_e(f.alt)}" width="{f.picture.width}" '
                       f'height="{f.picture.height}"><figcaption>{_e(f.caption)}</figcaption></figure>' for f in figures)
    views = _section("What your doctor sees", f"""
<p>During the injection your doctor watches X-ray pictures like these on a screen. Bone shows up white. The
labels are added here to help you find your way; the real screen has none.</p>
<div class="pictures">{pictures}</div>""", "pictures")
    spread = ("then dye (tinted blue) shows where the medicine will spread"
              if attempt.injection_t is not None else "")
    movie = _section("How the needle gets there", f"""
<p>A short film of simulated X-ray pictures, seen {_e(_view_words(attempt.session.target.views[-1]).lower())}:
the needle is moved in small steps to the green circle{", " + spread if spread else ""}.</p>
<figure><img id="animation" src="{data_url(animation, "image/gif")}" alt="Animation: the needle moves in small steps from the skin to
the green circle{' and blue-tinted dye spreads around it' if spread else ''}."></figure>""", "film")
    before = "".join(_section(h, b) for h, b in text.before)
    after = "".join(_section(h, b) for h, b in text.after)
    return f"""
<header class="hero">
  <p class="eyebrow">Information for patients</p>{greeting}
  <h1>{_e(text.title)}</h1>
  <div class="lead">{text.opening_html}</div>
</header>
{case}{before}{model}{views}{movie}{after}
<footer>
  <p>The pictures and the film on this page are computer simulations made to explain the procedure. They are not
  X-ray images of you, and the real procedure may differ in its details. Please ask your care team about anything
  that is unclear.</p>
</footer>"""


def explanation_html(scenario: Scenario, anatomy: Anatomy, *, log: LogContents | None = None, name: str | None = None,
                     pixels: int = 448) -> str:
    """The whole self-contained page (module docstring)."""
    text = leaflet(scenario)
    attempt = explained_attempt(scenario, anatomy, log)
    body = explanation_body(attempt, text, doctor_views(attempt, pixels=pixels), needle_animation(attempt),
                            spine_scene(attempt), name=name.strip() if name and name.strip() else None)
    page = resources.files("assets").joinpath("explain.html").read_text(encoding="utf-8")
    viewer = resources.files("assets").joinpath("viewer3d.js").read_text(encoding="utf-8")
    return page.replace("@TITLE@", _e(text.title)).replace("@VIEWER_JS@", viewer).replace("@BODY@", body)


def write_explanation(scenario: Scenario, anatomy: Anatomy, folder: str | Path, *, log: LogContents | None = None,
                      name: str | None = None, pixels: int = 448) -> Path:
    """Write the page as ``folder/index.html`` (atomically); returns its path."""
    page = explanation_html(scenario, anatomy, log=log, name=name, pixels=pixels)
    path = Path(folder) / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path
