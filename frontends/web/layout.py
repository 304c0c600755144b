"""What the workstation looks like: the trainee's simulator, the report, and the instructor's review.

Built with trame's Vuetify 3 widgets; every control carries an ``id`` (browser tests and screen
readers find it by that). State variables are those :mod:`frontends.web.views` computes; controller
methods are the requests of :class:`frontends.web.handlers.Handlers`, called with the values each
click carries.
"""

from __future__ import annotations

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3

_CSS = """
html, body { background: #eceff1; }
.monitor { background: #000; position: relative; aspect-ratio: 1 / 1; width: 100%; max-width: 640px;
           margin: 0 auto; border-radius: 6px; overflow: hidden; box-shadow: 0 2px 10px rgba(0,0,0,.35); }
.monitor img { width: 100%; height: 100%; display: block; cursor: crosshair; user-select: none; }
.monitor .empty { color: #607d8b; position: absolute; inset: 0; display: flex; align-items: center;
                  justify-content: center; font: 500 15px Roboto, sans-serif; letter-spacing: .04em; }
.monitor .caption { position: absolute; left: 10px; bottom: 8px; color: #b0bec5; font: 12px 'Roboto Mono', monospace;
                    pointer-events: none; }
.monitor-caption { color: #546e7a; font: 12px 'Roboto Mono', monospace; margin: 4px 4px 0; text-align: center; }
.monitor .pick { position: absolute; width: 18px; height: 18px; margin: -9px 0 0 -9px; border: 2px solid #ffca28;
                 border-radius: 50%; pointer-events: none; box-shadow: 0 0 0 1px #000; }
.counters { font: 500 13px 'Roboto Mono', monospace; }
.counter { background: #263238; color: #eceff1; border-radius: 6px; padding: 6px 10px; text-align: center; }
.counter .label { display: block; font: 10px Roboto, sans-serif; color: #90a4ae; text-transform: uppercase;
                  letter-spacing: .08em; }
.counter .value { font-size: 18px; }
.events { max-height: 260px; overflow-y: auto; }
.section-title { font: 500 11px Roboto, sans-serif; text-transform: uppercase; letter-spacing: .1em; color: #546e7a; }
.filmstrip img { width: 120px; height: 120px; object-fit: contain; background: #000; border-radius: 4px;
                 cursor: pointer; }
.monitor .pick.aim { border-color: #4dd0e1; }
.probe-label { width: 44px; }
.curve svg { max-width: 100%; height: auto; }
#review-table td, #review-table th { white-space: nowrap; }
"""


# A click on a monitor image: position and the image's size on screen (the server maps it to pixels).
_CLICK = "[$event.offsetX, $event.offsetY, $event.target.clientWidth, $event.target.clientHeight]"
# Probe movement rows: label, movement (frontends.web.attempt.PROBE_MOVES), unit, icons for - and +.
_PROBE_CONTROLS = (("Slide", "slide", "mm", "mdi-arrow-left", "mdi-arrow-right"),
                   ("Sweep", "sweep", "mm", "mdi-arrow-down", "mdi-arrow-up"),
                   ("Rotate", "rotate", "°", "mdi-rotate-left", "mdi-rotate-right"),
                   ("Tilt", "tilt", "°", "mdi-arrow-collapse-down", "mdi-arrow-collapse-up"),
                   ("Rock", "rock", "°", "mdi-undo", "mdi-redo"))

# The needle's nudge buttons: name, icon and the turn toward the image's right and top per degree of step.
_NUDGES = (("left", "mdi-arrow-left", -1, 0), ("right", "mdi-arrow-right", 1, 0), ("up", "mdi-arrow-up", 0, 1),
           ("down", "mdi-arrow-down", 0, -1))
_NUDGE_STEPS_DEG = (1.0, 5.0)


def _section(title: str, **kwargs):
    card = v3.VCard(classes="mb-3", variant="flat", border=True, **kwargs)
    with card:
        html.Div(title, classes="section-title px-4 pt-3")
    return card


def _counter(label: str, expression: str, element_id: str) -> None:
    with v3.VCol(cols=2, classes="pa-1"):
        with html.Div(classes="counter"):
            html.Span(label, classes="label")
            html.Span(f"{{{{ {expression} }}}}", classes="value", id=element_id)


def _assessment_table(variable: str, columns: tuple[str, str, str], tooltip: str) -> None:
    """A titled table of the Report tab's checklist or rating rows: what, its score, why (``tooltip``'s
    field on hover), shown only when the report has them."""
    html.Div(f"{{{{ {variable}_title }}}}", classes="section-title mt-3 mb-1", v_if=f"{variable}_title")
    with v3.VTable(density="compact", id=variable.replace("_", "-"), v_if=f"{variable}.length"):
        with html.Tbody():
            with html.Tr(v_for=f"(row, i) in {variable}", key="i"):
                html.Td(f"{{{{ row.{columns[0]} }}}}")
                html.Td(f"{{{{ row.{columns[1]} }}}}", classes="text-no-wrap font-weight-bold")
                html.Td(f"{{{{ row.{columns[2]} }}}}", classes="text-grey-darken-1", title=(f"row.{tooltip}",))


def _events_list(variable: str, element_id: str) -> None:
    with v3.VList(density="compact", classes="events py-0", id=element_id):
        with v3.VListItem(v_for=f"(e, i) in {variable}", key="i", classes="px-2"):
            with html.Div(classes="d-flex align-center"):
                v3.VChip("{{ e.kind }}", size="x-small", color=("e.colour",), variant="flat", label=True,
                         classes="mr-2 text-uppercase")
                html.Span("{{ e.message }}", classes="text-body-2")
                v3.VSpacer()
                html.Span("{{ e.t }} s", classes="text-caption text-grey")


def build_layout(server, instructor: bool) -> None:
    ctrl = server.controller
    with VAppLayout(server, full_height=True) as layout:
        layout.root.theme = "light"
        client.Style(_CSS)
        with v3.VAppBar(color="blue-grey-darken-4", density="comfortable", flat=True):
            html.Div("spinesim", classes="text-h6 font-weight-bold ml-4 mr-6", style="letter-spacing:.06em")
            with v3.VTabs(v_model=("tab", "sim"), color="cyan-lighten-3", density="comfortable"):
                v3.VTab("Simulator", value="sim", id="tab-sim")
                v3.VTab("Report", value="report", id="tab-report", disabled=("!report",))
                if instructor:
                    v3.VTab("Review", value="review", id="tab-review")
            v3.VSpacer()
            v3.VChip("{{ timer_text }}", id="timer", prepend_icon="mdi-timer-outline", variant="outlined",
                     classes="mr-3 counters", v_show="attempt_active")
            v3.VChip("{{ user_name }} · {{ role }}", prepend_icon="mdi-account", variant="tonal", classes="mr-2")
            v3.VBtn("Log out", href="/logout", variant="text", id="logout", classes="mr-2")
            v3.VProgressLinear(indeterminate=True, absolute=True, location="bottom", color="cyan", v_show="busy")
        with v3.VMain():
            with v3.VSnackbar(v_model=("error_show", False), color="deep-orange-darken-4", timeout=6000,
                              location="top", id="error"):
                html.Span("{{ error_text }}", id="error-text")
            with v3.VWindow(v_model=("tab",)):
                with v3.VWindowItem(value="sim"):
                    _simulator(ctrl)
                with v3.VWindowItem(value="report"):
                    _report(ctrl)
                if instructor:
                    with v3.VWindowItem(value="review"):
                        _review(ctrl)


# --------------------------------------------------------------------------- the trainee's simulator
def _simulator(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12, md=3):
                _scenario_card(ctrl)
                _carm_card(ctrl)
            # With ultrasound the middle column holds two monitors side by side (fluoroscopy, ultrasound);
            # the ultrasound takes two thirds, at least 512 px across on a 1600 px screen (issue 17).
            with v3.VCol(cols=12, md=("us_allowed ? 6 : 5",)):
                with v3.VRow(dense=True):
                    with v3.VCol(cols=12, md=("us_allowed ? 4 : 12",)):
                        _monitor("monitor", "fluoro", "fluoro_src", "NO IMAGE", ctrl.pick, "pick_marker", "pick-marker",
                                 "fluoro_caption", "fluoro-caption")
                    with v3.VCol(cols=12, md=8, v_if="us_allowed"):
                        _monitor("us-monitor", "ultrasound", "us_src", "NO PROBE", ctrl.us_pick, "us_aim_marker",
                                 "us-aim-marker", "us_caption", "us-caption", marker_class="pick aim", aspect="us_aspect",
                                 caption_inside=False)
                with v3.VRow(dense=True, classes="counters mt-2", justify="center"):
                    _counter("Shots", "shots", "count-shots")
                    _counter("Fluoro s", "fluoro_s", "count-fluoro")
                    _counter("Kerma mGy", "kerma_mgy", "count-kerma")
                    _counter("DAP mGy·cm²", "dap_mgy_cm2", "count-dap")
                    _counter("Passes", "passes", "count-passes")
                    _counter("Depth mm", "needle_in ? depth_mm : '–'", "count-depth")
                with v3.VAlert(v_model=("alert_show", False), color=("alert_colour",), closable=True, density="compact",
                               classes="mt-3", id="alert", icon="mdi-alert"):
                    html.Span("{{ alert_text }}", id="alert-text")
                with v3.VAlert(v_if="hub_text", color="red-darken-3", density="compact", classes="mt-2",
                               id="hub", icon="mdi-water"):
                    html.Span("{{ hub_text }}")
                _probe_card(ctrl)
            with v3.VCol(cols=12, md=("us_allowed ? 3 : 4",)):
                _needle_card(ctrl)
                _syringe_card(ctrl)
                with _section("Events"):
                    _events_list("events", "events")


def _monitor(element: str, image: str, source: str, empty: str, pick, marker: str, marker_element: str, caption: str,
             caption_element: str, marker_class: str = "pick", aspect: str | None = None,
             caption_inside: bool = True) -> None:
    """A black monitor holding the last image, clicked to pick a point (a ring marks it), with a caption;
    square, or shaped as the state variable ``aspect`` says (a CSS aspect-ratio, the image's).

    The fluoroscopy caption sits at the bottom left, over the image intensifier's black corner; the
    ultrasound frame is cut to its field of view and has no empty corner, so its caption goes under
    the monitor (inside, it covered the deep field or the needle's entry)."""
    shape = {"style": (f"`aspect-ratio: ${{{aspect}}}`",)} if aspect else {}
    with html.Div(classes="monitor", id=element, **shape):
        html.Img(src=(source,), id=image, v_show=source, draggable="false", click=(pick, _CLICK))
        html.Div(empty, classes="empty", v_show=f"!{source}")
        html.Div(v_if=marker, classes=marker_class, id=marker_element,
                 style=(f"`left:${{{marker}.x}}%;top:${{{marker}.y}}%`",))
        if caption_inside:
            html.Div(f"{{{{ {caption} }}}}", classes="caption", id=caption_element)
    if not caption_inside:
        html.Div(f"{{{{ {caption} }}}}", classes="monitor-caption", id=caption_element)


def _probe_card(ctrl) -> None:
    """Ultrasound: the standard views for the target, the probe movements in small steps, the machine
    settings, and the in-plane needle (aim picked on the image)."""
    busy = "busy || !attempt_active"
    with _section("Ultrasound probe", v_if="us_allowed", id="probe-card"):
        with v3.VCardText(classes="pb-1"):
            with html.Div(classes="d-flex flex-wrap ga-1 mb-2 align-center"):
                html.Span("View", classes="text-caption text-grey-darken-1 mr-1")
                v3.VBtn("{{ name }}", v_for="name in us_views", key="name", size="small", variant="tonal",
                        color="teal-darken-2", click=(ctrl.probe_view, "[name]"), id=("`probe-view-${name}`",),
                        disabled=(busy,))
            with v3.VRow(dense=True):
                for label, movement, unit, minus, plus in _PROBE_CONTROLS:
                    with v3.VCol(cols=6, md=4, classes="d-flex align-center probe-move"):
                        html.Span(label, classes="text-caption text-grey-darken-1 probe-label")
                        for sign, icon in ((-1, minus), (1, plus)):
                            v3.VBtn(icon=icon, size="x-small", variant="tonal", classes="ml-1",
                                    id=f"probe-{movement}-{'minus' if sign < 0 else 'plus'}",
                                    click=(ctrl.probe_move, f"['{movement}', {sign}, us_step_mm, us_step_deg]"),
                                    disabled=(f"{busy} || !probe_on",), title=f"{label} {'−' if sign < 0 else '+'} ({unit})")
            with v3.VRow(dense=True, classes="mt-1"):
                for model, label, step, element in (("us_step_mm", "Step mm", "0.5", "us-step-mm"),
                                                    ("us_step_deg", "Step °", "1", "us-step-deg"),
                                                    ("us_depth", "Depth mm", "5", "us-depth"),
                                                    ("us_gain", "Gain dB", "1", "us-gain"),
                                                    ("us_frequency", "MHz", "0.5", "us-frequency")):
                    with v3.VCol(cols=4, md=2 if element.startswith("us-step") else True):
                        v3.VTextField(v_model=(model,), type="number", step=step, label=label, density="compact",
                                      id=element, hide_details=True)
                with v3.VCol(cols="auto"):
                    v3.VBtn("Set", id="probe-apply", variant="tonal", size="small", classes="mt-1",
                            click=(ctrl.probe_settings, "[us_depth, us_gain, us_frequency]"),
                            disabled=(f"{busy} || !probe_on",))
            html.Div("Aim: {{ us_aim_text || 'click the target on the ultrasound image' }}",
                     classes="text-body-2 mt-2", id="us-aim-text")
        with v3.VCardActions(classes="flex-wrap"):
            with v3.VBtnToggle(v_model=("us_entry_end", "right"), density="compact", mandatory=True, variant="outlined",
                               divided=True, id="us-entry-end"):
                v3.VBtn("from image left", value="left", size="small", id="us-entry-left")
                v3.VBtn("from image right", value="right", size="small", id="us-entry-right")
            v3.VBtn("Insert in plane", id="insert-in-plane", color="primary", variant="flat", size="small",
                    click=(ctrl.insert_in_plane, "[us_entry_end]"), disabled=(f"{busy} || !us_aim_marker",))


def _scenario_card(ctrl) -> None:
    with _section("Case"):
        with v3.VCardText():
            v3.VSelect(v_model=("scenario_id",), items=("scenario_items",), label="Scenario", density="compact",
                       id="scenario", disabled=("attempt_active",), hide_details=True, classes="mb-2")
            html.Div("{{ scenario.brief }}", classes="text-body-2 mb-2", id="brief")
            v3.VChip("{{ scenario.difficulty }}", id="difficulty", size="x-small", label=True, variant="tonal",
                     classes="mb-1 text-uppercase", prepend_icon="mdi-signal-cellular-2",
                     color=("{beginner: 'green-darken-2', intermediate: 'amber-darken-3', advanced: "
                            "'red-darken-2'}[scenario.difficulty]",))
            with html.Div(v_if="scenario.objectives && scenario.objectives.length", id="objectives", classes="mb-2"):
                html.Div("Objectives", classes="section-title")
                with html.Ul(classes="text-body-2 pl-4"):
                    html.Li("{{ o }}", v_for="(o, i) in scenario.objectives", key="i")
            html.Div("{{ scenario.needle }} · {{ scenario.imaging }}", classes="text-caption text-grey-darken-1")
            html.Div("Attempt {{ attempt_id }} · {{ action_count }} actions saved", v_show="attempt_id",
                     classes="text-caption text-grey-darken-1", id="attempt-status")
        with v3.VCardActions():
            v3.VBtn("Start attempt", id="start", color="primary", variant="flat",
                    click=(ctrl.start_attempt, "[scenario_id]"), disabled=("busy || attempt_active",))
            v3.VBtn("Resume", id="resume", color="amber-darken-3", variant="flat",
                    click=(ctrl.resume_attempt, "[resume_id]"), v_show="resume_id", disabled=("busy",))
            v3.VBtn("Finish", id="finish", color="teal-darken-2", variant="flat", click=ctrl.finish,
                    v_show="attempt_active", disabled=("busy",))
        html.Div("{{ resume_text }}", v_show="resume_id", classes="text-caption px-4 pb-3", id="resume-text")
        _explanation_buttons(ctrl)
        with html.Div(v_show="attempt_active && (hints_left || hints_shown.length)", classes="px-4 pb-3"):
            with v3.VAlert(v_for="(h, i) in hints_shown", key="i", density="compact", variant="tonal", color="cyan-darken-3",
                           classes="mb-1 text-body-2", icon="mdi-lightbulb-outline"):
                html.Span("{{ h }}")
            v3.VBtn("Hint ({{ hints_left }} left)", id="hint", size="small", variant="text", prepend_icon="mdi-lightbulb-on",
                    click=ctrl.hint, disabled=("!hints_left",))


def _explanation_buttons(ctrl) -> None:
    """The patient explanation of the case picked: prepared on the first click (a few seconds, the button
    spins meanwhile), then opened in a new tab. A trainee gets it after finishing an attempt at the case."""
    ready = "explain_page && explain_for == scenario_id"
    with html.Div(v_show="role == 'instructor' || !attempt_active", classes="px-4 pb-3"):
        v3.VBtn("Patient explanation", id="explain", size="small", variant="tonal", color="blue-grey-darken-2",
                prepend_icon="mdi-account-heart-outline", v_if=f"!({ready})",
                click=(ctrl.explain_case, "[scenario_id]"), disabled=("busy",),
                loading=("busy && explain_for == scenario_id",),
                title="a page for the patient: the procedure in plain words, a 3D model and the needle's path")
        v3.VBtn("Open patient explanation", id="explain-open", size="small", variant="flat", color="blue-grey-darken-2",
                prepend_icon="mdi-open-in-new", v_if=ready, href=("explain_page",),
                raw_attrs=['target="_blank"', 'rel="noopener"'])
        html.Div("Preparing the patient explanation (a few seconds)…", id="explain-working",
                 v_show="busy && explain_for == scenario_id && !explain_page", classes="text-caption text-grey mt-1")


def _carm_card(ctrl) -> None:
    with _section("C-arm"):
        with v3.VCardText(classes="pb-1"):
            with html.Div(classes="d-flex flex-wrap ga-1 mb-3"):
                v3.VBtn("{{ name }}", v_for="name in preset_names", key="name", size="small", variant="tonal",
                        click=(ctrl.preset, "[name]"), id=("`preset-${name.replace(/ /g, '-')}`",),
                        disabled=("busy || !attempt_active",))
            v3.VTextField(v_model=("carm_primary",), type="number", step="1", label="LAO (+) / RAO (−) °",
                          density="compact", id="carm-primary", hide_details=True, classes="mb-2")
            v3.VTextField(v_model=("carm_secondary",), type="number", step="1", label="Cranial (+) / caudal (−) °",
                          density="compact", id="carm-secondary", hide_details=True, classes="mb-1")
            html.Div("Now: {{ carm_label }}", classes="text-caption text-grey-darken-1", id="carm-label")
        with v3.VCardActions():
            v3.VBtn("Move C-arm", id="move-carm", variant="tonal", click=(ctrl.move_carm, "[carm_primary, carm_secondary]"),
                    disabled=("busy || !attempt_active",))
    with _section("Fluoroscopy"):
        with v3.VCardText(classes="pb-1"):
            v3.VTextField(v_model=("live_seconds",), type="number", step="0.5", label="Live / DSA run (s)",
                          density="compact", id="live-seconds", hide_details=True)
        with v3.VCardActions(classes="flex-wrap"):
            v3.VBtn("Shot", id="shot", color="yellow-darken-2", variant="flat", prepend_icon="mdi-radioactive",
                    click=ctrl.shot, disabled=("busy || !attempt_active",))
            v3.VBtn("Live", id="live", color="orange-darken-2", variant="flat", click=(ctrl.live, "[live_seconds]"),
                    disabled=("busy || !attempt_active",))
            v3.VBtn("DSA", id="dsa", color="deep-orange-darken-3", variant="flat", click=(ctrl.dsa, "[live_seconds]"), v_show="dsa_allowed",
                    disabled=("busy || !attempt_active",))


def _needle_card(ctrl) -> None:
    with _section("Needle"):
        with v3.VCardText(classes="pb-1"):
            html.Div("Entry: {{ entry_text || 'click the skin entry point on the image' }}",
                     classes="text-body-2 mb-2", id="entry-text")
            with v3.VRow(dense=True):
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("needle_left",), type="number", step="1", label="Tip toward L (+) / R (−) °",
                                  density="compact", id="needle-left", hide_details=True)
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("needle_cranial",), type="number", step="1", label="Cranial (+) / caudal (−) °",
                                  density="compact", id="needle-cranial", hide_details=True)
            _aim_controls(ctrl)
            with v3.VRow(dense=True, classes="mt-1"):
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("step_mm",), type="number", step="0.5", label="Step (mm)", density="compact",
                                  id="step", hide_details=True)
        with v3.VCardActions(classes="flex-wrap"):
            v3.VBtn("Insert", id="insert", color="primary", variant="flat", click=(ctrl.insert, "[needle_left, needle_cranial]"),
                    disabled=("busy || !attempt_active",))
            v3.VBtn("Advance", id="advance", variant="tonal", prepend_icon="mdi-arrow-down", click=(ctrl.advance, "[step_mm]"),
                    disabled=("busy || !attempt_active || !needle_in",))
            v3.VBtn("Withdraw", id="withdraw", variant="tonal", prepend_icon="mdi-arrow-up", click=(ctrl.withdraw, "[step_mm]"),
                    disabled=("busy || !attempt_active || !needle_in",))
            v3.VBtn("Redirect", id="redirect", variant="tonal", click=(ctrl.redirect, "[needle_left, needle_cranial]"),
                    disabled=("busy || !attempt_active || !needle_in",))


def _aim_controls(ctrl) -> None:
    """Aim by looking: the needle's angle fields set along the C-arm's beam (down the barrel), and nudged
    by a small or a large step toward the image's left, right, top or bottom; Insert or Redirect uses them."""
    busy = "busy || !attempt_active"
    v3.VBtn("Align with beam", id="align-beam", size="small", variant="tonal", classes="mt-2",
            prepend_icon="mdi-crosshairs", click=ctrl.align_beam, disabled=(busy,))
    for step_deg in _NUDGE_STEPS_DEG:
        with html.Div(classes="d-flex align-center mt-1"):
            html.Span(f"Nudge {step_deg:g}°", classes="text-caption text-grey-darken-1 mr-1 nudge-label")
            for name, icon, right, up in _NUDGES:
                v3.VBtn(icon=icon, size="x-small", variant="tonal", classes="ml-1", id=f"nudge-{name}-{step_deg:g}",
                        click=(ctrl.nudge, f"[needle_left, needle_cranial, {right * step_deg:g}, {up * step_deg:g}]"),
                        disabled=(busy,))


def _syringe_card(ctrl) -> None:
    with _section("Syringe"):
        with v3.VCardText(classes="pb-1"):
            html.Div("Loss of resistance: {{ lor_text || '—' }}", classes="text-body-2 mb-2", id="lor-text")
            v3.VTextField(v_model=("contrast_ml",), type="number", step="0.1", label="Contrast (mL)", density="compact",
                          id="contrast-ml", hide_details=True)
        with v3.VCardActions():
            v3.VBtn("Check LOR", id="lor", variant="tonal", click=ctrl.lor,
                    disabled=("busy || !attempt_active || !needle_in",))
            v3.VBtn("Inject", id="inject", color="indigo", variant="flat", click=(ctrl.inject, "[contrast_ml]"),
                    disabled=("busy || !attempt_active || !needle_in",))
        # The therapeutic injection, apart from the contrast test: not radio-opaque, no image shows it.
        with v3.VCardText(classes="pb-1"):
            v3.VSelect(v_model=("medication_agent",), items=("medication_agents",), label="Injectate", density="compact",
                       id="medication-agent", hide_details=True)
            v3.VTextField(v_model=("medication_ml",), type="number", step="0.1", label="Injectate (mL)",
                          density="compact", id="medication-ml", hide_details=True, classes="mt-2")
        with v3.VCardActions():
            v3.VBtn("Inject medication", id="medicate", color="teal", variant="flat",
                    click=(ctrl.medicate, "[medication_ml, medication_agent]"),
                    disabled=("busy || !attempt_active || !needle_in",))


# --------------------------------------------------------------------------- report
def _report(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3", v_if="report"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12, md=5):
                with _section("Outcome"):
                    with v3.VCardText():
                        with html.Div(classes="d-flex align-center mb-3"):
                            html.Div("{{ report.grade.toFixed(0) }}", id="report-grade",
                                     classes="text-h3 font-weight-bold mr-3",
                                     style=("report.passed ? 'color:#2e7d32' : 'color:#c62828'",))
                            v3.VChip("{{ report.passed ? 'PASS' : 'FAIL' }}", id="report-outcome", size="large",
                                     color=("report.passed ? 'green-darken-2' : 'red-darken-2'",), variant="flat",
                                     classes="mr-3 font-weight-bold")
                            html.Div("{{ report.scenario_title }}<br><span class='text-caption'>attempt "
                                     "{{ report.attempt_id }} · {{ report.user }} · {{ report.status }} · target: "
                                     "{{ report.target.description }}</span>", classes="text-body-1")
                        html.Div("Grade: {{ report_peers }}", v_if="report_peers", id="report-peers",
                                 classes="text-body-2 mb-2")
                        html.Div("Safety flags", classes="section-title mb-1")
                        html.Div("none", v_if="!report.flags.length", classes="text-body-2 mb-2", id="report-no-flags")
                        with html.Div(id="report-flags"):
                            with v3.VAlert(v_for="(f, i) in report.flags", key="i", density="compact", variant="tonal",
                                           classes="mb-1",
                                           color=("f.severity == 'critical' ? 'red-darken-3' : f.severity == 'major' ? "
                                                  "'deep-orange-darken-2' : 'amber-darken-3'",)):
                                html.Span("{{ f.code }}", classes="flag-code d-none")
                                html.Span("{{ f.severity }} · {{ f.title }}", classes="font-weight-bold mr-2")
                                html.Span("{{ f.message }}")
                        html.Div("Feedback", classes="section-title mt-3 mb-1")
                        with html.Ul(classes="text-body-2 pl-4", id="report-feedback"):
                            html.Li("{{ item.text }}", v_for="(item, i) in report.feedback", key="i")
                        html.Div("Metrics", classes="section-title mt-3 mb-1")
                        # The rows come formatted (scoring.report.metric_rows), as the HTML report lists them.
                        with v3.VTable(density="compact", id="report-metrics"):
                            with html.Tbody():
                                with html.Tr(v_for="(row, i) in report_rows", key="i"):
                                    html.Td("{{ row.label }}", classes="text-grey-darken-1")
                                    html.Td("{{ row.value }}")
                        # The checklist and the global rating, formatted once (scoring.report) as the HTML report lists them.
                        _assessment_table("report_checklist", ("step", "status", "detail"), "evidence")
                        _assessment_table("report_rating", ("item", "score", "reason"), "anchor")
                    with v3.VCardActions():
                        v3.VBtn("New attempt", id="new-attempt", color="primary", variant="flat", click=ctrl.new_attempt)
            with v3.VCol(cols=12, md=7):
                with _section("Replay"):
                    with v3.VCardText():
                        with v3.VRow(dense=True):
                            with v3.VCol(cols=12, md=("replay_us_src ? 6 : 12",)):
                                with html.Div(classes="monitor", style="max-width: 460px"):
                                    html.Img(src=("replay_src",), id="replay-image", v_show="replay_src")
                                    html.Div("NO IMAGE", classes="empty", v_show="!replay_src")
                                    html.Div("{{ replay_caption }}", classes="caption")
                            with v3.VCol(cols=12, md=6, v_if="replay_us_src"):
                                with html.Div(classes="monitor",
                                              style=("`max-width: 460px; aspect-ratio: ${replay_us_aspect}`",)):
                                    html.Img(src=("replay_us_src",), id="replay-ultrasound")
                                    html.Div("{{ replay_us_caption }}", classes="caption")
                        v3.VSlider(v_model=("replay_step", 0), min=0, max=("replay_max",), step=1, id="replay-slider",
                                   show_ticks=True, classes="mt-3", hide_details=True, thumb_label=True)
                        html.Div("{{ replay_action }}", classes="text-body-2 mb-1", id="replay-action")
                        _events_list("replay_events", "replay-events")
                with _section("Images"):
                    with v3.VCardText(classes="filmstrip d-flex flex-wrap ga-2"):
                        with html.Div(v_for="(s, i) in report_shots", key="i", classes="text-center"):
                            html.Img(src=("s.src",), click="replay_step = s.step", title=("s.caption",))
                            html.Div("{{ s.caption }}", classes="text-caption")
                        with html.Div(v_for="(s, i) in report_scans", key="'us' + i", classes="text-center us-frame"):
                            html.Img(src=("s.src",), click="replay_step = s.step", title=("s.caption",))
                            html.Div("ultrasound, step {{ s.step }}", classes="text-caption")
        with v3.VRow(dense=True):
            with v3.VCol(cols=12):
                with _section("Full report · final views, contrast run, 3D reveal"):
                    with v3.VCardText():
                        html.Div("Preparing the full report…", v_if="!report_page", classes="text-body-2 text-grey")
                        html.Iframe(v_if="report_page", src=("report_page",), id="report-page",
                                    style="width:100%; height:1100px; border:0; background:#fff")


# --------------------------------------------------------------------------- instructor review
def _review(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12, md=7):
                with _section("Attempts"):
                    with v3.VCardText():
                        with v3.VRow(dense=True):
                            with v3.VCol(cols=6):
                                v3.VSelect(v_model=("review_trainee", None), items=("review_trainees",), label="Trainee",
                                           clearable=True, density="compact", id="review-trainee", hide_details=True)
                            with v3.VCol(cols=6):
                                v3.VSelect(v_model=("review_scenario", None), items=("scenario_items",),
                                           label="Scenario", clearable=True, density="compact", id="review-scenario",
                                           hide_details=True)
                        v3.VBtn("Download CSV", href=("review_csv",), download="spinesim-attempts.csv",
                                id="review-csv", variant="tonal", size="small", prepend_icon="mdi-download",
                                classes="mt-2", v_show="review_rows.length")
                        with v3.VTable(density="compact", id="review-table", hover=True):
                            with html.Thead():
                                with html.Tr():
                                    for title in ("#", "Trainee", "Scenario", "Started", "Status", "Outcome", "Grade",
                                                  "Percentile (of)", "Time", "Actions", ""):
                                        html.Th(title)
                            with html.Tbody():
                                with html.Tr(v_for="r in review_rows", key="r.id"):
                                    for field in ("id", "user", "scenario", "started", "status"):
                                        html.Td(f"{{{{ r.{field} }}}}")
                                    with html.Td():
                                        v3.VChip("{{ r.outcome }}", v_if="r.outcome", size="small", variant="flat",
                                                 color=("r.outcome == 'pass' ? 'green-darken-2' : 'red-darken-2'",))
                                    html.Td("{{ r.grade }}")
                                    html.Td("{{ r.percentile }}", title="the grade's percentile among the finished "
                                            "attempts at the same scenario (of how many)")
                                    html.Td("{{ r.time }}")
                                    html.Td("{{ r.actions }}")
                                    with html.Td():
                                        v3.VBtn("Open", size="small", variant="tonal", id=("`open-${r.id}`",),
                                                click=(ctrl.open_attempt, "[r.id]"))
            with v3.VCol(cols=12, md=5):
                with _section("Learning curve"):
                    with v3.VCardText():
                        html.Div("Pick a trainee (and a scenario, or none for every case) to see their attempts "
                                 "over time: per procedure, a CUSUM of failures against an acceptable 10% and an "
                                 "unacceptable 30% failure rate (Bolsin & Colson 2000).", v_if="!curve_svg",
                                 classes="text-body-2 text-grey")
                        html.Div(v_html=("curve_svg",), classes="curve", id="curve")
                with _section("Scenario preview"):
                    with v3.VCardText():
                        v3.VSelect(v_model=("preview_id",), items=("scenario_items",), label="Scenario",
                                   density="compact", id="preview-scenario", hide_details=True, classes="mb-2")
                        v3.VBtn("Preview", id="preview", variant="tonal", click=(ctrl.preview, "[preview_id]"),
                                classes="mb-2")
                        with html.Div(classes="monitor", style="max-width: 360px", v_show="preview_src"):
                            html.Img(src=("preview_src",), id="preview-image")
                        html.Div("{{ preview_text }}", classes="text-body-2 mt-2")
