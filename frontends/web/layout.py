"""What the workstation looks like: the trainee's simulator, the report, and the instructor's review and case editor.

Built with trame's Vuetify 3 widgets; every control carries an ``id`` (browser tests and screen
readers find it by that). State variables are those :mod:`frontends.web.views` computes; controller
methods are the requests of :class:`frontends.web.handlers.Handlers`, called with the values each
click carries.
"""

from __future__ import annotations

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3

from frontends.casebook import DRAFT_FIELDS
from frontends.store import MAX_COMMENT_CHARS
from simulator.case.controls import PAN_STEP_MM

_CSS = """
html, body { background: #eceff1; }
.monitor { background: #000; position: relative; aspect-ratio: 1 / 1; width: 100%; max-width: 640px;
           margin: 0 auto; border-radius: 6px; overflow: hidden; box-shadow: 0 2px 10px rgba(0,0,0,.35); }
.monitor img { width: 100%; height: 100%; display: block; cursor: crosshair; user-select: none; }
.monitor .zoom { width: 100%; height: 100%; position: relative; }
.carm-pad { position: relative; width: 132px; height: 66px; flex: none; border-radius: 4px; cursor: grab;
            touch-action: none; user-select: none; background: #eceff1; border: 1px solid #b0bec5;
            background-image: linear-gradient(#b0bec5, #b0bec5), linear-gradient(#b0bec5, #b0bec5);
            background-size: 1px 100%, 100% 1px; background-position: center; background-repeat: no-repeat; }
.carm-pad[aria-disabled=true] { cursor: not-allowed; opacity: .6; }
.carm-pad .dot { position: absolute; width: 12px; height: 12px; margin: -6px 0 0 -6px; border-radius: 50%;
                 background: #37474f; pointer-events: none; }
.carm-pad .edge { position: absolute; font-size: 9px; color: #78909c; pointer-events: none; line-height: 1; }
.carm-pad .edge.left { left: 2px; top: 2px; } .carm-pad .edge.right { right: 2px; top: 2px; }
.carm-pad .edge.top { left: 50%; top: 2px; margin-left: 3px; }
.carm-pad .edge.bottom { left: 50%; bottom: 2px; margin-left: 3px; }
.monitor .zoom-controls { position: absolute; right: 6px; top: 6px; display: flex; gap: 4px; align-items: center; }
.monitor .zoom-controls .v-btn { background: rgba(38,50,56,.75); color: #eceff1; }
.monitor .zoom-level { color: #eceff1; font: 12px 'Roboto Mono', monospace; background: rgba(38,50,56,.75);
                    border-radius: 4px; padding: 1px 5px; }
.shortcuts { color: #546e7a; font: 12px Roboto, sans-serif; text-align: center; margin-top: 6px; }
.shortcuts kbd { font: 11px 'Roboto Mono', monospace; background: #cfd8dc; border-radius: 3px; padding: 0 4px;
                 margin-right: 3px; }
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
.programme table { border-collapse: collapse; font: 13px Roboto, sans-serif; margin-bottom: 12px; }
.programme th { text-align: left; font-weight: 500; color: #546e7a; border-bottom: 1px solid #cfd8dc;
                padding: 4px 8px; }
.programme td { border-bottom: 1px solid #eceff1; padding: 4px 8px; vertical-align: middle; }
.programme .programme-curve { display: inline-block; margin: 0 12px 8px 0; }
.programme .procedure { font-size: 11px; color: #78909c; }
.programme { overflow-x: auto; }
"""


# A case's difficulty as a colour (the case card and the report).
_DIFFICULTY_COLOURS = "{beginner: 'green-darken-2', intermediate: 'amber-darken-3', advanced: 'red-darken-2'}"
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
# An attempt's outcome (frontends.web.views.report_view) as the Report tab colours its grade and chip.
_OUTCOME_COLOURS = "{pass: '#2e7d32', fail: '#c62828', abandoned: '#546e7a'}"
_OUTCOME_CHIPS = "{pass: 'green-darken-2', fail: 'red-darken-2', abandoned: 'blue-grey'}"


# Keyboard shortcuts: key (KeyboardEvent.key, lower case; "shift+" for a shifted arrow) -> the control it
# presses (by id) and how the list on screen names it. A shortcut presses the button, so it does what the
# button does and nothing while the button is disabled; none acts while the trainee types in a field.
_SHORTCUTS = {"arrowleft": ("nudge-left-1", "←"), "arrowright": ("nudge-right-1", "→"),
              "arrowup": ("nudge-up-1", "↑"), "arrowdown": ("nudge-down-1", "↓"), "shift+arrowleft": ("nudge-left-5", "⇧←"),
              "shift+arrowright": ("nudge-right-5", "⇧→"), "shift+arrowup": ("nudge-up-5", "⇧↑"),
              "shift+arrowdown": ("nudge-down-5", "⇧↓"), "a": ("align-beam", "A"), "s": ("shot", "S"),
              "f": ("shot", "F"), "l": ("live", "L"), "i": ("insert", "I"), "enter": ("advance", "Enter"),
              "m": ("magnify-next", "M"), "c": ("collimate-next", "C"), "w": ("withdraw", "W"), "r": ("redirect", "R"),
              "+": ("zoom-in", "+"), "=": ("zoom-in", "="),
              "-": ("zoom-out", "−"), "0": ("zoom-reset", "0")}
# What the on-screen list says, in order: the keys (as _SHORTCUTS names them) and what they do.
_SHORTCUT_LIST = (("← ↑ → ↓", "nudge the needle 1° (⇧ 5°)"), ("A", "align with beam"), ("S / F", "shot"),
                  ("Space (hold)", "live while held"), ("L", "live run"), ("I", "insert"), ("Enter", "advance"),
                  ("W", "withdraw"), ("R", "redirect"), ("M", "magnification"), ("C", "shutters"),
                  ("+ / − / 0", "zoom"),
                  ("drag on the image", "re-aim the needle"), ("drag the C-arm pad", "swing the C-arm"))
# The C-arm pad's edges: LAO/RAO to a true lateral either way, cranial/caudal to the tilts spine work uses
# (the fields take any angle the C-arm can reach) [ED].
PAD_PRIMARY_DEG = 90
PAD_SECONDARY_DEG = 45
# A press that moves further than this on the fluoroscopy image before it is let go is a drag (re-aims the
# needle), not a click (picks the entry), screen px [ED].
_DRAG_MIN_PX = 6
_KEYS_SCRIPT = """
if (!window.spinesimKeys) {
  window.spinesimKeys = %s;
  // Live while held: the Live (hold) button or the space bar, like a foot pedal. Let go anywhere (the
  // pointer off the button, the window losing focus), the beam stops.
  window.spinesimLive = {
    held: false,
    press() {
      const control = document.getElementById('live-hold');
      if (this.held || !control || control.disabled) return;
      this.held = true;
      window.trame.trigger('%s', [true]);
    },
    release() {
      if (!this.held) return;
      this.held = false;
      window.trame.trigger('%s', [false]);
    },
  };
  window.addEventListener('pointerdown', event => {
    if (event.button === 0 && event.target.closest && event.target.closest('#live-hold')) window.spinesimLive.press();
  });
  for (const name of ['pointerup', 'pointercancel', 'blur']) {
    window.addEventListener(name, () => window.spinesimLive.release());
  }
  // A drag on the fluoroscopy image re-aims the needle from its entry (a click still picks the entry): the
  // positions in the image's own frame (as a click's), its size on screen and the needle's angle fields.
  window.spinesimDrag = null;
  window.addEventListener('pointerdown', event => {
    window.spinesimDrag = event.button === 0 && event.target.id === 'fluoro' ? [event.offsetX, event.offsetY] : null;
  });
  window.addEventListener('pointerup', event => {
    const start = window.spinesimDrag;
    window.spinesimDrag = null;
    if (!start || event.target.id !== 'fluoro') return;
    if (Math.hypot(event.offsetX - start[0], event.offsetY - start[1]) < %d) return;  // a click
    window.spinesimDragged = true;
    const image = event.target, state = window.trame.state;
    window.trame.trigger('%s', [start[0], start[1], event.offsetX, event.offsetY, image.clientWidth,
                                image.clientHeight, state.get('needle_left'), state.get('needle_cranial')]);
  });
  window.addEventListener('click', event => {  // the click that ends a drag picks nothing
    if (!window.spinesimDragged) return;
    window.spinesimDragged = false;
    event.stopImmediatePropagation();
  }, true);
  // Dragging on the C-arm pad swings the C-arm, as the radiographer swings it by hand: across for LAO/RAO,
  // up and down for cranial/caudal. The angle fields follow the pointer; the C-arm moves when it is let go.
  window.spinesimOrbit = null;
  const orbit = event => {
    const box = window.spinesimOrbit.getBoundingClientRect();
    const across = Math.min(1, Math.max(-1, 2 * (event.clientX - box.left) / box.width - 1));
    const up = Math.min(1, Math.max(-1, 1 - 2 * (event.clientY - box.top) / box.height));
    const angles = [Math.round(across * %d), Math.round(up * %d)];
    window.trame.state.set('carm_primary', angles[0]);
    window.trame.state.set('carm_secondary', angles[1]);
    return angles;
  };
  window.addEventListener('pointerdown', event => {
    const pad = event.button === 0 && event.target.closest && event.target.closest('#carm-pad');
    if (!pad || pad.getAttribute('aria-disabled') === 'true') return;
    event.preventDefault();
    window.spinesimOrbit = pad;
    orbit(event);
  });
  window.addEventListener('pointermove', event => { if (window.spinesimOrbit) orbit(event); });
  window.addEventListener('pointerup', event => {
    if (!window.spinesimOrbit) return;
    const angles = orbit(event);
    window.spinesimOrbit = null;
    window.trame.trigger('%s', angles);
  });
  const typing = target => {
    // Typing in a field, working a slider or a menu, or a dialog open: the keys are theirs (a message
    // shown at the top is no dialog: the keys still work the controls).
    const fields = 'input, textarea, select, [contenteditable], [role=slider], .v-overlay:not(.v-snackbar)';
    return (target.closest && target.closest(fields)) || document.querySelector('.v-overlay--active:not(.v-snackbar)');
  };
  window.addEventListener('keyup', event => {
    if (event.key === ' ' && window.spinesimLive.held) { event.preventDefault(); window.spinesimLive.release(); }
  });
  window.addEventListener('keydown', event => {
    if (event.key === ' ' && !typing(event.target)) {
      event.preventDefault();  // not a click on the button that has the focus
      if (!event.repeat) window.spinesimLive.press();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (typing(target)) return;
    if ((event.key === 'Enter' || event.key === ' ') && target.closest && target.closest('button, a')) return;
    const key = event.key.toLowerCase();
    const found = window.spinesimKeys[(event.shiftKey && key.startsWith('arrow') ? 'shift+' : '') + key];
    const control = found && document.getElementById(found);
    if (!control || control.disabled || control.offsetParent === null) return;
    event.preventDefault();
    control.click();
  });
}
"""


def _keys_script(live_hold: str, drag_aim: str, move_carm: str) -> str:
    """The page's key and pointer listeners (added once): a key presses the control :data:`_SHORTCUTS`
    names, the space bar or the Live (hold) button held holds Live, a drag on the image re-aims the needle,
    a drag on the C-arm pad swings the C-arm; ``live_hold``, ``drag_aim`` and ``move_carm`` are the triggers
    of those requests."""
    import json

    shortcuts = json.dumps({key: control for key, (control, _) in _SHORTCUTS.items()})
    return _KEYS_SCRIPT % (shortcuts, live_hold, live_hold, _DRAG_MIN_PX, drag_aim, PAD_PRIMARY_DEG,
                           PAD_SECONDARY_DEG, move_carm)


def _one_per_press(ctrl, click, values: str = "[]") -> str:
    """The click handler (JavaScript) of an exposure button: the second click of a double-click is no
    second exposure (the browser counts it in ``event.detail``)."""
    return f"$event.detail > 1 || trigger('{ctrl.trigger_name(click)}', {values})"


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
        client.Script(_keys_script(ctrl.trigger_name(ctrl.live_hold), ctrl.trigger_name(ctrl.drag_aim),
                                   ctrl.trigger_name(ctrl.move_carm)))
        with v3.VAppBar(color="blue-grey-darken-4", density="comfortable", flat=True):
            # On a phone the tabs get the width: the name, the user and the words of Log out give way.
            html.Div("spinesim", classes="text-h6 font-weight-bold ml-4 mr-6 d-none d-sm-block",
                     style="letter-spacing:.06em")
            with v3.VTabs(v_model=("tab", "sim"), color="cyan-lighten-3", density="comfortable", id="tabs"):
                v3.VTab("Simulator", value="sim", id="tab-sim", min_width=0)
                v3.VTab("Report", value="report", id="tab-report", disabled=("!report",), min_width=0)
                if instructor:
                    v3.VTab("Review", value="review", id="tab-review", min_width=0)
                    v3.VTab("Cases", value="cases", id="tab-cases", min_width=0)
                else:
                    v3.VTab("My attempts", value="mine", id="tab-mine", min_width=0)
            v3.VSpacer()
            if instructor:  # the upload page is the portal's (frontends/web/upload.py): a CT is too big for the socket
                v3.VBtn("Bring a patient's CT", href="/upload", id="upload-open", variant="text", classes="mr-1",
                        prepend_icon="mdi-upload", title="upload a CT and its vertebra labels: a patient for cases")
            v3.VChip("{{ timer_text }}", id="timer", prepend_icon="mdi-timer-outline", variant="outlined",
                     classes="mr-2 counters", v_show="attempt_active")
            v3.VChip("{{ user_name }} · {{ role }}", prepend_icon="mdi-account", variant="tonal",
                     classes="mr-2 d-none d-md-flex")
            with v3.VBtn(href="/logout", variant="text", id="logout", classes="mr-1", prepend_icon="mdi-logout",
                         title="Log out"):
                html.Span("Log out", classes="d-none d-sm-inline")
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
                    with v3.VWindowItem(value="cases"):
                        _case_editor(ctrl)
                else:
                    with v3.VWindowItem(value="mine"):
                        _my_attempts(ctrl)


# --------------------------------------------------------------------------- the trainee's simulator
def _simulator(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3"):
        with v3.VRow(dense=True):
            # During an attempt the C-arm and its Shot button come first, in view with the monitor and the
            # needle (1024 x 768 included); the case card follows. Before one, the case comes first.
            with v3.VCol(cols=12, md=3, classes="d-flex flex-column"):
                _scenario_card(ctrl)
                _carm_card(ctrl)
            # With ultrasound the middle column holds two monitors side by side (fluoroscopy, ultrasound);
            # the ultrasound takes two thirds, at least 512 px across on a 1600 px screen (issue 17).
            with v3.VCol(cols=12, md=("us_allowed ? 6 : 5",)):
                with v3.VRow(dense=True):
                    with v3.VCol(cols=12, md=("us_allowed ? 4 : 12",)):
                        _monitor("monitor", "fluoro", "fluoro_src", "NO IMAGE", ctrl.pick, "pick_marker", "pick-marker",
                                 "fluoro_caption", "fluoro-caption", zoom="fluoro_zoom")
                    with v3.VCol(cols=12, md=8, v_if="us_allowed"):
                        _monitor("us-monitor", "ultrasound", "us_src", "NO PROBE", ctrl.us_pick, "us_aim_marker",
                                 "us-aim-marker", "us_caption", "us-caption", marker_class="pick aim", aspect="us_aspect",
                                 caption_inside=False, empty_hidden_by="us_preparing")
                with v3.VRow(dense=True, classes="counters mt-2", justify="center"):
                    _counter("Shots", "shots", "count-shots")
                    _counter("Fluoro s", "fluoro_s", "count-fluoro")
                    _counter("Kerma mGy", "kerma_mgy", "count-kerma")
                    _counter("DAP mGy·cm²", "dap_mgy_cm2", "count-dap")
                    _counter("Passes", "passes", "count-passes")
                    _counter("Depth mm", "needle_in ? depth_mm : '–'", "count-depth")
                with html.Div(classes="shortcuts d-none d-md-block", id="shortcuts"):
                    html.Span("Keys: ")
                    for number, (keys, action) in enumerate(_SHORTCUT_LIST):
                        html.Kbd(keys, classes="ml-2" if number else "")
                        html.Span(action)
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
                _rf_card(ctrl)
                with _section("Events"):
                    _events_list("events", "events")


def _monitor(element: str, image: str, source: str, empty: str, pick, marker: str, marker_element: str, caption: str,
             caption_element: str, marker_class: str = "pick", aspect: str | None = None,
             caption_inside: bool = True, zoom: str | None = None, empty_hidden_by: str | None = None) -> None:
    """A black monitor holding the last image, clicked to pick a point (a ring marks it), with a caption;
    square, or shaped as the state variable ``aspect`` says (a CSS aspect-ratio, the image's).

    The fluoroscopy caption sits at the bottom left, over the image intensifier's black corner; the
    ultrasound frame is cut to its field of view and has no empty corner, so its caption goes under
    the monitor (inside, it covered the deep field or the needle's entry).

    ``zoom`` (a state variable, 1 to 4): the image magnified about the picked point (the centre before
    one), with buttons in the corner. A click still picks the pixel under it: the browser gives the
    click's position in the image's own, unmagnified, frame.

    ``empty_hidden_by`` (a state variable): while it is true the empty monitor does not say ``empty``, the
    caption says why (the ultrasound's "NO PROBE" would contradict "Preparing the ultrasound…")."""
    shape = {"style": (f"`aspect-ratio: ${{{aspect}}}`",)} if aspect else {}
    with html.Div(classes="monitor", id=element, **shape):
        transform = ({"style": (f"`transform: scale(${{{zoom}}}); transform-origin: ${{{marker} ? {marker}.x : 50}}% "
                                f"${{{marker} ? {marker}.y : 50}}%`",)} if zoom else {})
        with html.Div(classes="zoom", **transform):
            html.Img(src=(source,), id=image, v_show=source, draggable="false", click=(pick, _CLICK))
            html.Div(v_if=marker, classes=marker_class, id=marker_element,
                     style=(f"`left:${{{marker}.x}}%;top:${{{marker}.y}}%`",))
        html.Div(empty, classes="empty", v_show=f"!{source}" + (f" && !{empty_hidden_by}" if empty_hidden_by else ""))
        if caption_inside:
            html.Div(f"{{{{ {caption} }}}}", classes="caption", id=caption_element)
        if zoom:
            with html.Div(classes="zoom-controls", v_show=source):
                html.Span(f"×{{{{ {zoom} }}}}", classes="zoom-level", id=f"{element}-zoom-level", v_show=f"{zoom} > 1")
                v3.VBtn(icon="mdi-magnify-minus-outline", size="x-small", id="zoom-out", title="zoom out (−)",
                        click=f"{zoom} = Math.max(1, {zoom} - 0.5)", disabled=(f"{zoom} <= 1",))
                v3.VBtn(icon="mdi-magnify-plus-outline", size="x-small", id="zoom-in", title="zoom in (+)",
                        click=f"{zoom} = Math.min(4, {zoom} + 0.5)", disabled=(f"{zoom} >= 4",))
                v3.VBtn(icon="mdi-fit-to-screen-outline", size="x-small", id="zoom-reset", title="whole image (0)",
                        click=f"{zoom} = 1", disabled=(f"{zoom} == 1",))
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
    with _section("Case", id="case-card", style=("`order: ${attempt_active ? 1 : 0}`",)):
        with v3.VCardText():
            v3.VSelect(v_model=("scenario_id",), items=("scenario_items",), label="Scenario", density="compact",
                       id="scenario", disabled=("attempt_active",), hide_details=True, classes="mb-2")
            html.Div("{{ scenario.brief }}", classes="text-body-2 mb-2", id="brief")
            v3.VChip("{{ scenario.difficulty }}", id="difficulty", size="x-small", label=True, variant="tonal",
                     classes="mb-1 text-uppercase", prepend_icon="mdi-signal-cellular-2",
                     color=(f"{_DIFFICULTY_COLOURS}[scenario.difficulty]",))
            with html.Div(v_if="scenario.objectives && scenario.objectives.length", id="objectives", classes="mb-2"):
                html.Div("Objectives", classes="section-title")
                with html.Ul(classes="text-body-2 pl-4"):
                    html.Li("{{ o }}", v_for="(o, i) in scenario.objectives", key="i")
            html.Div("{{ scenario.needle }} · {{ scenario.imaging }}", classes="text-caption text-grey-darken-1")
            # Where the case offers a choice of needle: the one taken from the tray for the next Insert.
            v3.VSelect(v_model=("needle_number",), items=("needle_items",), label="Needle from the tray",
                       density="compact", id="needle-choice", hide_details=True, classes="mt-2",
                       v_if="needle_items.length > 1", disabled=("busy",))
            html.Div("Attempt {{ attempt_id }} · {{ action_count }} actions saved", v_show="attempt_id",
                     classes="text-caption text-grey-darken-1", id="attempt-status")
        with v3.VCardActions(classes="flex-wrap"):
            v3.VBtn("Start attempt", id="start", color="primary", variant="flat",
                    click=(ctrl.start_attempt, "[scenario_id]"), disabled=("busy || attempt_active",))
            v3.VBtn("Resume", id="resume", color="amber-darken-3", variant="flat",
                    click=(ctrl.resume_attempt, "[resume_id]"), v_show="resume_id", disabled=("busy",))
            v3.VBtn("Finish", id="finish", color="teal-darken-2", variant="flat", click="finish_confirm = true",
                    v_show="attempt_active", disabled=("busy",))
            v3.VBtn("Abandon", id="abandon", color="blue-grey", variant="text", click="abandon_confirm = true",
                    v_show="attempt_active", disabled=("busy",))
        _confirmation(ctrl, "finish_confirm", "finish", "Finish and grade this attempt?",
                      "The attempt is graded as it stands; nothing can be added to it afterwards.", "Finish and grade")
        _confirmation(ctrl, "abandon_confirm", "abandon", "Abandon this attempt?",
                      "It stays in your records as abandoned, with what you did, and is not graded.", "Abandon")
        html.Div("{{ notice_text }}", v_show="notice_text && !attempt_active", classes="text-caption px-4 pb-3",
                 id="notice")
        html.Div("{{ resume_text }}", v_show="resume_id", classes="text-caption px-4 pb-3", id="resume-text")
        _explanation_buttons(ctrl)
        with html.Div(v_show="attempt_active && (hints_left || hints_shown.length)", classes="px-4 pb-3"):
            with v3.VAlert(v_for="(h, i) in hints_shown", key="i", density="compact", variant="tonal", color="cyan-darken-3",
                           classes="mb-1 text-body-2", icon="mdi-lightbulb-outline"):
                html.Span("{{ h }}")
            v3.VBtn("Hint ({{ hints_left }} left)", id="hint", size="small", variant="text", prepend_icon="mdi-lightbulb-on",
                    click=ctrl.hint, disabled=("!hints_left",))


def _confirmation(ctrl, shown: str, name: str, title: str, text: str, action: str) -> None:
    """A dialog (open while the state variable ``shown`` is true) asking before the click ``name``:
    ``Keep working`` (#name-cancel) or ``action`` (#name-confirm)."""
    with v3.VDialog(v_model=(shown, False), max_width=420):
        with v3.VCard(id=f"{name}-dialog"):
            v3.VCardTitle(title, classes="text-h6")
            v3.VCardText(text)
            with v3.VCardActions():
                v3.VSpacer()
                v3.VBtn("Keep working", id=f"{name}-cancel", variant="text", click=f"{shown} = false")
                v3.VBtn(action, id=f"{name}-confirm", color="teal-darken-2", variant="flat",
                        click=f"{shown} = false; trigger('{ctrl.trigger_name(getattr(ctrl, name))}')")


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


def _attempt_explanation_buttons(ctrl) -> None:
    """The patient explanation of the attempt whose report is open (its patient, its needle): prepared on the
    first click, then opened in a new tab."""
    ready = "explain_attempt_page && explain_attempt_for == report.attempt_id"
    v3.VBtn("Explain this attempt to the patient", id="explain-attempt", size="small", variant="tonal",
            color="blue-grey-darken-2", prepend_icon="mdi-account-heart-outline", v_if=f"!({ready})",
            click=ctrl.explain_attempt, disabled=("busy",),
            loading=("busy && explain_attempt_for == report.attempt_id",),
            title="a page for the patient: the procedure in plain words, a 3D model and this attempt's needle")
    v3.VBtn("Open patient explanation", id="explain-attempt-open", size="small", variant="flat",
            color="blue-grey-darken-2", prepend_icon="mdi-open-in-new", v_if=ready, href=("explain_attempt_page",),
            raw_attrs=['target="_blank"', 'rel="noopener"'])


def _carm_card(ctrl) -> None:
    """The C-arm (presets, angles) and its exposures in one card, compact enough to stay in view."""
    busy = "busy || !attempt_active"
    with _section("C-arm", id="carm-card"):
        with v3.VCardText(classes="pb-1"):
            with html.Div(classes="d-flex flex-wrap ga-1 mb-2"):
                v3.VBtn("{{ name }}", v_for="name in preset_names", key="name", size="small", variant="tonal",
                        click=(ctrl.preset, "[name]"), id=("`preset-${name.replace(/ /g, '-')}`",), disabled=(busy,))
            with v3.VRow(dense=True):
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("carm_primary",), type="number", step="1", label="LAO + / RAO − °",
                                  title="LAO (+) or RAO (−), degrees", density="compact", id="carm-primary",
                                  hide_details=True)
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("carm_secondary",), type="number", step="1", label="Cran + / caud − °",
                                  title="cranial (+) or caudal (−) tilt, degrees", density="compact",
                                  id="carm-secondary", hide_details=True)
            with html.Div(classes="d-flex align-center mt-1"):
                _carm_pad(busy)
                with html.Div(classes="ml-2 flex-grow-1"):
                    html.Div("Now: {{ carm_label }}", classes="text-caption text-grey-darken-1", id="carm-label")
                    v3.VBtn("Move C-arm", id="move-carm", variant="tonal", size="small",
                            click=(ctrl.move_carm, "[carm_primary, carm_secondary]"), disabled=(busy,))
            _carm_modes(ctrl, busy)
            v3.VDivider(classes="my-2")
            v3.VTextField(v_model=("live_seconds",), type="number", step="0.5", label="Live / DSA run (s)",
                          density="compact", id="live-seconds", hide_details=True)
        with v3.VCardActions(classes="flex-wrap"):
            v3.VBtn("Shot", id="shot", color="yellow-darken-2", variant="flat", prepend_icon="mdi-radioactive",
                    click=_one_per_press(ctrl, ctrl.shot), disabled=(busy,))
            v3.VBtn("Live", id="live", color="orange-darken-2", variant="flat",
                    title="a live run of the seconds above (L)",
                    click=_one_per_press(ctrl, ctrl.live, "[live_seconds]"), disabled=(busy,))
            # Held down, the beam stays on (frames at the pulse rate) while the needle is advanced; the page's
            # other requests do not disable it, so that letting go is always heard.
            v3.VBtn("Hold live", id="live-hold", color="orange-darken-4", variant="flat", prepend_icon="mdi-foot-print",
                    title="hold to screen live while you advance (or hold the space bar, like the foot pedal)",
                    disabled=("!attempt_active",))
            v3.VBtn("DSA", id="dsa", color="deep-orange-darken-3", variant="flat", v_show="dsa_allowed",
                    click=_one_per_press(ctrl, ctrl.dsa, "[live_seconds]"), disabled=(busy,))
            # The newest run again, frame by frame (the contrast filling and washing out): a cine loop.
            v3.VBtn("Replay run", id="play-run", variant="tonal", prepend_icon="mdi-replay", click=ctrl.play_run,
                    v_show="has_run", disabled=("busy || !attempt_active",))


def _carm_pad(busy: str) -> None:
    """The C-arm pad: the dot is the C-arm's angles (across: RAO to LAO, up: caudal to cranial, to
    :data:`PAD_PRIMARY_DEG` and :data:`PAD_SECONDARY_DEG` at the edges); dragging it swings the C-arm, which
    moves when it is let go (the page's pointer listeners, :func:`_keys_script`)."""
    dot_at = (f"`left:${{50 + 50 * Math.max(-1, Math.min(1, Number(carm_primary) / {PAD_PRIMARY_DEG}))}}%;"
              f"top:${{50 - 50 * Math.max(-1, Math.min(1, Number(carm_secondary) / {PAD_SECONDARY_DEG}))}}%`")
    with html.Div(id="carm-pad", classes="carm-pad", aria_disabled=(busy,),
                  title="drag to swing the C-arm: across for LAO/RAO, up and down for cranial/caudal"):
        html.Span("RAO", classes="edge left")
        html.Span("LAO", classes="edge right")
        html.Span("CRAN", classes="edge top")
        html.Span("CAUD", classes="edge bottom")
        html.Div(classes="dot", style=(dot_at,))


def _carm_modes(ctrl, busy: str) -> None:
    """The image intensifier's field (magnification mode; M steps through them), the collimator's shutters
    (C), and the table moved under the C-arm (the view panned toward the image's left, right, top or
    bottom by :data:`PAN_STEP_MM`)."""
    with html.Div(classes="d-flex align-center flex-wrap mt-1", id="carm-modes"):
        html.Span("Field", classes="text-caption text-grey-darken-1 mr-1 nudge-label")
        v3.VBtn("{{ f }}", v_for="f in carm_fields", key="f", size="x-small", classes="mr-1",
                variant=("f == carm_field_cm ? 'flat' : 'tonal'",), color=("f == carm_field_cm ? 'blue-grey' : ''",),
                id=("`magnify-${f}`",), click=(ctrl.magnify, "[f]"), disabled=(busy,),
                title=("`${f} cm field${f == carm_fields[0] ? '' : ': magnified, more dose'}`",))
        html.Span("cm", classes="text-caption text-grey-darken-1 mr-3")
        html.Span("Shutters", classes="text-caption text-grey-darken-1 mr-1")
        v3.VBtn("{{ o == 1 ? 'open' : Math.round(100 * o) + '%' }}", v_for="o in carm_openings", key="o",
                size="x-small", classes="mr-1", variant=("o == carm_shutters ? 'flat' : 'tonal'",),
                color=("o == carm_shutters ? 'blue-grey' : ''",), id=("`collimate-${Math.round(100 * o)}`",),
                click=(ctrl.collimate, "[o]"), disabled=(busy,), title="collimate: less dose-area product and scatter")
        # The next field and the next opening, in turn (the keys M and C press these).
        v3.VBtn(icon="mdi-magnify-plus-outline", id="magnify-next", size="x-small", variant="text", disabled=(busy,),
                title="next field (M)",
                click=(ctrl.magnify, "[carm_fields[(carm_fields.indexOf(carm_field_cm) + 1) % carm_fields.length]]"))
        v3.VBtn(icon="mdi-crop", id="collimate-next", size="x-small", variant="text", disabled=(busy,),
                title="next shutter opening (C)",
                click=(ctrl.collimate, "[carm_openings[(carm_openings.indexOf(carm_shutters) + 1) % "
                                       "carm_openings.length]]"))
    with html.Div(classes="d-flex align-center mt-1", id="pan"):
        html.Span(f"Table {PAN_STEP_MM:g} mm", classes="text-caption text-grey-darken-1 mr-1 nudge-label")
        for name, icon, right, up in _NUDGES:
            v3.VBtn(icon=icon, size="x-small", variant="tonal", classes="ml-1", id=f"pan-{name}",
                    title=f"move the table: the view goes {name}",
                    click=(ctrl.pan, f"[{right * PAN_STEP_MM:g}, {up * PAN_STEP_MM:g}]"), disabled=(busy,))


def _needle_card(ctrl) -> None:
    with _section("Needle"):
        with v3.VCardText(classes="pb-1"):
            html.Div("Entry: {{ entry_text || 'click the skin entry point on the image' }}",
                     classes="text-body-2 mb-2", id="entry-text", title=("entry_lps",))
            with v3.VRow(dense=True):
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("needle_left",), type="number", step="1", label="Tip L + / R − °",
                                  title="the tip toward the patient's left (+) or right (−), degrees",
                                  density="compact", id="needle-left", hide_details=True)
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("needle_cranial",), type="number", step="1", label="Cran + / caud − °",
                                  title="the tip cranial (+) or caudal (−), degrees",
                                  density="compact", id="needle-cranial", hide_details=True)
            _aim_controls(ctrl)
            _bevel_control()
            with v3.VRow(dense=True, classes="mt-1"):
                with v3.VCol(cols=6):
                    v3.VTextField(v_model=("step_mm",), type="number", step="0.5", label="Step (mm)", density="compact",
                                  id="step", hide_details=True)
        with v3.VCardActions(classes="flex-wrap"):
            v3.VBtn("Insert", id="insert", color="primary", variant="flat",
                    click=(ctrl.insert, "[needle_left, needle_cranial, bevel_roll_deg]"),
                    disabled=("busy || !attempt_active",))
            v3.VBtn("Advance", id="advance", variant="tonal", prepend_icon="mdi-arrow-down", click=(ctrl.advance, "[step_mm]"),
                    disabled=("busy || !attempt_active || !needle_in",))
            v3.VBtn("Withdraw", id="withdraw", variant="tonal", prepend_icon="mdi-arrow-up", click=(ctrl.withdraw, "[step_mm]"),
                    disabled=("busy || !attempt_active || !needle_in",))
            v3.VBtn("Redirect", id="redirect", variant="tonal",
                    click=(ctrl.redirect, "[needle_left, needle_cranial, bevel_roll_deg]"),
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


def _bevel_control() -> None:
    """The bevel turned a quarter at a time (0°: facing cranial); Insert and Redirect use it. What it faces
    once the needle is in, in the patient's directions, is said beside it."""
    with html.Div(classes="d-flex align-center mt-1", id="bevel"):
        html.Span("Bevel", classes="text-caption text-grey-darken-1 mr-1 nudge-label")
        v3.VBtn(icon="mdi-rotate-left", size="x-small", variant="tonal", classes="ml-1", id="bevel-left",
                title="turn the bevel a quarter anticlockwise", click="bevel_roll_deg = (bevel_roll_deg + 270) % 360")
        html.Span("{{ bevel_roll_deg }}°", classes="text-body-2 mx-2", id="bevel-roll")
        v3.VBtn(icon="mdi-rotate-right", size="x-small", variant="tonal", id="bevel-right",
                title="turn the bevel a quarter clockwise", click="bevel_roll_deg = (bevel_roll_deg + 90) % 360")
    html.Div("{{ bevel_text }}", v_if="bevel_text", classes="text-caption text-grey-darken-1", id="bevel-text")


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
        # The trainee names the pattern the images show; the reading is scored (not the engine's verdict).
        with v3.VCardText(classes="pb-1", v_if="contrast_given"):
            v3.VSelect(v_model=("contrast_reading",), items=("contrast_reading_items",), label="The contrast reads as",
                       density="compact", id="contrast-reading", hide_details=True)
        with v3.VCardActions(v_if="contrast_given"):
            v3.VBtn("Name the pattern", id="read-contrast", variant="tonal", click=(ctrl.read_contrast, "[contrast_reading]"),
                    disabled=("busy || !attempt_active || !contrast_reading",))
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


def _rf_card(ctrl) -> None:
    """The RF generator of a radiofrequency ablation: sensory (50 Hz) and motor (2 Hz) stimulation, and the lesion."""
    busy = "busy || !attempt_active || !needle_in"
    with _section("RF generator", v_if="rf_allowed", id="rf-card"):
        with v3.VCardText(classes="pb-1"):
            html.Div("{{ rf_text || '—' }}", classes="text-body-2 mb-2", id="rf-text")
            v3.VTextField(v_model=("stim_volts",), type="number", step="0.1", label="Stimulation (V)",
                          density="compact", id="stim-volts", hide_details=True)
        with v3.VCardActions():
            v3.VBtn("Sensory 50 Hz", id="stim-sensory", variant="tonal",
                    click=(ctrl.stimulate, "['sensory', stim_volts]"), disabled=(busy,))
            v3.VBtn("Motor 2 Hz", id="stim-motor", variant="tonal", click=(ctrl.stimulate, "['motor', stim_volts]"),
                    disabled=(busy,))
        with v3.VCardText(classes="pb-1 d-flex"):
            v3.VTextField(v_model=("lesion_temperature",), type="number", step="1", label="°C", density="compact",
                          id="lesion-temperature", hide_details=True, classes="mr-2")
            v3.VTextField(v_model=("lesion_seconds",), type="number", step="10", label="s", density="compact",
                          id="lesion-seconds", hide_details=True)
        with v3.VCardActions():
            v3.VBtn("Lesion", id="lesion", color="deep-orange-darken-2", variant="flat",
                    click=(ctrl.lesion, "[lesion_temperature, lesion_seconds]"), disabled=(busy,))


# --------------------------------------------------------------------------- report
def _report(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3", v_if="report"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12, md=5):
                with _section("Outcome"):
                    with v3.VCardText():
                        # Wraps on a phone: the verdict chip is never squeezed under the case's title.
                        with html.Div(classes="d-flex align-center flex-wrap ga-3 mb-3"):
                            html.Div("{{ report.grade_text }}", id="report-grade",
                                     classes="text-h3 font-weight-bold",
                                     style=(f"'color:' + {_OUTCOME_COLOURS}[report.outcome]",))
                            v3.VChip("{{ report.outcome.toUpperCase() }}", id="report-outcome", size="large",
                                     color=(f"{_OUTCOME_CHIPS}[report.outcome]",), variant="flat",
                                     classes="font-weight-bold flex-shrink-0")
                            html.Div("{{ report.scenario_title }}<br><span class='text-caption'>attempt "
                                     "{{ report.attempt_id }} · {{ report.user }} · {{ report.status }} · target: "
                                     "{{ report.target.description }}</span>", classes="text-body-1")
                        html.Div("Grade: {{ report_peers }}", v_if="report_peers", id="report-peers",
                                 classes="text-body-2 mb-2")
                        # The case's difficulty and objectives, as the case card showed them before the attempt.
                        v3.VChip("{{ report.difficulty }}", id="report-difficulty", size="x-small", label=True,
                                 variant="tonal", classes="mb-1 text-uppercase", prepend_icon="mdi-signal-cellular-2",
                                 color=(f"{_DIFFICULTY_COLOURS}[report.difficulty]",))
                        with html.Div(v_if="report.objectives && report.objectives.length", id="report-objectives",
                                      classes="mb-2"):
                            html.Div("Objectives", classes="section-title")
                            with html.Ul(classes="text-body-2 pl-4"):
                                html.Li("{{ o }}", v_for="(o, i) in report.objectives", key="i")
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
                    with v3.VCardActions(classes="flex-wrap"):
                        v3.VBtn("New attempt", id="new-attempt", color="primary", variant="flat", click=ctrl.new_attempt)
                        _attempt_explanation_buttons(ctrl)
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
                        # The comments left at the step the slider shows, beside its image and action.
                        with html.Div(id="replay-comments"):
                            with v3.VAlert(v_for="(c, i) in report_comments.filter(c => c.step === replay_step)",
                                           key="i", density="compact", variant="tonal", color="indigo",
                                           icon="mdi-comment-text-outline", classes="mb-1"):
                                html.Div("{{ c.author }} · {{ c.reply ? 'reply' : 'comment' }} at step {{ c.step }} · {{ c.when }}",
                                         classes="text-caption")
                                html.Div("{{ c.text }}", classes="text-body-2", style="white-space: pre-wrap")
                        _events_list("replay_events", "replay-events")
                        _comments(ctrl)
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


def _comments(ctrl) -> None:
    """The attempt's comments (an instructor's, the trainee's reply), each at a replay step or on the whole
    attempt: click one to go to its step. An instructor comments at the step the slider shows or on the
    attempt; the trainee replies where an instructor has commented (:meth:`frontends.store.Store.add_comment`),
    so their buttons wait for the slider to show such a step."""
    html.Div("Comments", classes="section-title mt-3")
    with v3.VList(density="compact", classes="py-0", id="report-comments"):
        with v3.VListItem(v_for="(c, i) in report_comments", key="i", classes="px-2",
                          click="c.step !== null && (replay_step = c.step)"):
            html.Div("{{ c.author }} · {{ c.where }} · {{ c.when }}", classes="text-caption text-grey")
            html.Div("{{ c.text }}", classes="text-body-2", style="white-space: pre-wrap")
        v3.VListItem("No comments yet.", v_if="!report_comments.length", classes="px-2 text-body-2 text-grey")
    trainee = "role === 'trainee'"
    v3.VTextarea(v_model=("comment_text", ""), label=(f"{trainee} ? 'Your reply to your instructor' : 'Comment'",),
                 rows=2, auto_grow=True, density="compact", hide_details=True, id="comment-text",
                 counter=MAX_COMMENT_CHARS, classes="mt-2")
    instructor_at = "report_comments.some(c => !c.reply && c.step === {})"
    with html.Div(classes="d-flex ga-2 mt-1"):
        v3.VBtn("Comment at this step", id="comment-step", size="small", variant="tonal", v_if=f"!({trainee})",
                click=(ctrl.comment, "[comment_text, replay_step]"), disabled=("busy || !comment_text",))
        v3.VBtn("Comment on the attempt", id="comment-attempt", size="small", variant="text", v_if=f"!({trainee})",
                click=(ctrl.comment, "[comment_text, null]"), disabled=("busy || !comment_text",))
        v3.VBtn("Reply at this step", id="reply-step", size="small", variant="tonal", v_if=trainee,
                click=(ctrl.comment, "[comment_text, replay_step]"),
                disabled=(f"busy || !comment_text || !{instructor_at.format('replay_step')}",))
        v3.VBtn("Reply on the attempt", id="reply-attempt", size="small", variant="text", v_if=trainee,
                click=(ctrl.comment, "[comment_text, null]"),
                disabled=(f"busy || !comment_text || !{instructor_at.format('null')}",))


# --------------------------------------------------------------------------- the trainee's own attempts
def _my_attempts(ctrl) -> None:
    """The trainee's past attempts, newest first: Open shows one's report and replay with the comments an
    instructor left, each at its step."""
    with v3.VContainer(fluid=True, classes="pa-3"):
        with _section("My attempts"):
            with v3.VCardText():
                html.Div("No finished attempts yet: finish one and it is listed here with its grade and any "
                         "comments from your instructor.", v_if="!my_rows.length", classes="text-body-2 text-grey")
                with v3.VTable(density="compact", id="my-attempts", hover=True, v_if="my_rows.length"):
                    with html.Thead():
                        with html.Tr():
                            for title in ("#", "Case", "Started", "Outcome", "Grade", "Time", "Comments", ""):
                                html.Th(title)
                    with html.Tbody():
                        with html.Tr(v_for="r in my_rows", key="r.id"):
                            for field in ("id", "case", "started"):
                                html.Td(f"{{{{ r.{field} }}}}")
                            with html.Td():
                                v3.VChip("{{ r.outcome }}", v_if="r.outcome", size="small", variant="flat",
                                         color=(f"{_OUTCOME_CHIPS}[r.outcome]",))
                            for field in ("grade", "time", "comments"):
                                html.Td(f"{{{{ r.{field} }}}}")
                            with html.Td():
                                v3.VBtn("Open", size="small", variant="tonal", id=("`mine-open-${r.id}`",),
                                        click=(ctrl.open_attempt, "[r.id]"), disabled=("busy",))


# --------------------------------------------------------------------------- instructor review
def _review(ctrl) -> None:
    with v3.VContainer(fluid=True, classes="pa-3"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12):
                _programme()
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
                        # `download` as a raw attribute: the VBtn widget does not pass on a keyword it does not
                        # declare, and without it the browser names the file after the data URL.
                        v3.VBtn("Download CSV", href=("review_csv",), raw_attrs=['download="spinesim-attempts.csv"'],
                                id="review-csv", variant="tonal", size="small", prepend_icon="mdi-download",
                                classes="mt-2 mr-2", v_show="review_rows.length")
                        v3.VBtn("Download xAPI", href=("review_xapi",),
                                raw_attrs=['download="spinesim-attempts.xapi.json"'], id="review-xapi",
                                variant="tonal", size="small", prepend_icon="mdi-download", classes="mt-2",
                                v_show="review_rows.length",
                                title="the attempts shown as xAPI 1.0.3 statements for a learning record store")
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
                                                 color=(f"{_OUTCOME_CHIPS}[r.outcome]",))
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


# The case editor's form as the one value its Preview and Save send (each field is a state variable of its own:
# the page does not redraw a control bound to a field inside a state object).
_DRAFT = "[{" + ", ".join(f"{name}: draft_{name}" for name in DRAFT_FIELDS) + "}]"


def _case_editor(ctrl) -> None:
    """The instructor's case editor (:mod:`frontends.web.editor`): a new case from a library case (or a department
    case opened again), its preview, saving it to the department's cases, assigning and removing one. A refusal
    shows under the field it is about (``editor_errors``)."""
    with v3.VContainer(fluid=True, classes="pa-3"):
        with v3.VRow(dense=True):
            with v3.VCol(cols=12, md=7):
                with _section("{{ editor_editing ? 'Department case ' + editor_editing : 'New case from a library "
                              "case' }}", id="editor-card"):
                    with v3.VCardText():
                        v3.VSelect(v_model=("draft_base",), items=("editor_bases",), label="Start from library case",
                                   density="compact", id="editor-base", hide_details=True, classes="mb-1",
                                   update_modelValue=(ctrl.editor_base, "[$event]"), disabled=("busy",),
                                   v_if="!editor_editing")
                        with html.Div(v_else=True, classes="d-flex align-center mb-1"):
                            html.Span("Changing a saved case; a new case id saves a copy.",
                                      classes="text-body-2", id="editor-editing")
                            v3.VBtn("New case instead", id="editor-new", variant="text", size="small", classes="ml-2",
                                    click=(ctrl.editor_base, "[editor_bases[0].value]"), disabled=("busy",))
                        html.Div("{{ editor_procedure }}", classes="text-caption text-grey-darken-1 mb-2",
                                 id="editor-procedure")
                        with v3.VRow(dense=True):
                            with v3.VCol(cols=12, sm=4):
                                v3.VTextField(v_model=("draft_id",), label="Case id", density="compact",
                                              id="editor-id", hint="lower-case letters, digits, - and _",
                                              persistent_hint=True, error_messages=("editor_errors.id || []",))
                            with v3.VCol(cols=12, sm=8):
                                v3.VTextField(v_model=("draft_title",), label="Title", density="compact",
                                              id="editor-title", hide_details="auto",
                                              error_messages=("editor_errors.title || []",))
                        v3.VTextarea(v_model=("draft_brief",), label="Brief (what the trainee is told)",
                                     density="compact", rows=2, auto_grow=True, id="editor-brief", hide_details="auto",
                                     classes="mt-2", error_messages=("editor_errors.brief || []",))
                        with v3.VRow(dense=True, classes="mt-1"):
                            with v3.VCol(cols=12, sm=4):
                                v3.VSelect(v_model=("draft_level",), items=("editor_levels",), label="Level",
                                           density="compact", id="editor-level", hide_details="auto",
                                           disabled=("!editor_levels.length",),
                                           error_messages=("editor_errors.level || []",))
                            with v3.VCol(cols=12, sm=4):
                                v3.VSelect(v_model=("draft_side",), items=("editor_sides",), label="Side",
                                           density="compact", id="editor-side", hide_details="auto",
                                           error_messages=("editor_errors.side || []",))
                            with v3.VCol(cols=12, sm=4):
                                v3.VSelect(v_model=("draft_difficulty",), items=("editor_difficulties",),
                                           label="Difficulty", density="compact", id="editor-difficulty",
                                           hide_details="auto", error_messages=("editor_errors.difficulty || []",))
                        html.Div("Patient", classes="section-title mt-3")
                        v3.VSelect(v_model=("draft_patient",), items=("editor_patients",), label="Patient",
                                   density="compact", id="editor-patient", hide_details="auto", classes="mb-2",
                                   update_menu=(ctrl.editor_patients, "[]"),
                                   error_messages=("editor_errors.patient || []",),
                                   hint="a generated patient, or one whose CT was brought (Bring a patient's CT, "
                                        "top bar)", persistent_hint=True)
                        # mt-6: room for the sliders' value labels above their thumbs.
                        with html.Div(v_if="!draft_patient", classes="mt-6"):
                            v3.VSlider(v_model=("draft_bmi",), min=("editor_ranges.bmi[0]",),
                                       max=("editor_ranges.bmi[1]",), step=1, thumb_label="always",
                                       density="compact", label="BMI (kg/m²)", id="editor-bmi", hide_details="auto",
                                       error_messages=("editor_errors.bmi || []",))
                            v3.VSlider(v_model=("draft_degeneration",), min=("editor_ranges.degeneration[0]",),
                                       max=("editor_ranges.degeneration[1]",), step=0.5, thumb_label="always",
                                       density="compact", label="Degeneration (0 none - 3 severe)",
                                       id="editor-degeneration", hide_details="auto",
                                       error_messages=("editor_errors.degeneration || []",))
                        v3.VTextarea(v_model=("draft_objectives",), label="Objectives (one a line)",
                                     density="compact", rows=3, auto_grow=True, id="editor-objectives",
                                     hide_details="auto", classes="mt-2",
                                     error_messages=("editor_errors.objectives || []",))
                        with html.Div(classes="d-flex flex-wrap"):
                            for field, label in (("hints", "Hints allowed"), ("fluoroscopy", "Fluoroscopy"),
                                                 ("dsa", "DSA"), ("ultrasound", "Ultrasound")):
                                v3.VCheckbox(v_model=(f"draft_{field}",), label=label, density="compact",
                                             id=f"editor-{field}", hide_details=True, classes="mr-4")
                    with v3.VCardActions():
                        v3.VBtn("Preview", id="editor-preview", variant="tonal", disabled=("busy",),
                                click=(ctrl.editor_preview, _DRAFT), prepend_icon="mdi-eye")
                        v3.VBtn("Save case", id="editor-save", color="primary", variant="flat", disabled=("busy",),
                                click=(ctrl.editor_save, _DRAFT), prepend_icon="mdi-content-save")
                    html.Div("{{ editor_text }}", classes="text-body-2 px-4 pb-3", id="editor-text")
            with v3.VCol(cols=12, md=5):
                with _section("Preview"):
                    with v3.VCardText():
                        html.Div("Preview draws the new case's patient on an AP view with the target ringed.",
                                 v_if="!editor_preview_src", classes="text-body-2 text-grey")
                        with html.Div(classes="monitor", style="max-width: 360px", v_show="editor_preview_src"):
                            html.Img(src=("editor_preview_src",), id="editor-preview-image")
                with _section("The department's cases", id="assign-card"):
                    with v3.VCardText():
                        html.Div("No department cases yet: make one from a library case on the left and save it.",
                                 v_if="!editor_cases.length", classes="text-body-2 text-grey mb-2",
                                 id="editor-no-cases")
                        v3.VSelect(v_model=("assign_case", None), items=("editor_cases",), label="Department case",
                                   density="compact", id="assign-case", hide_details=True, classes="mb-2",
                                   disabled=("!editor_cases.length",))
                        with html.Div(classes="d-flex mb-3"):
                            v3.VBtn("Open to change", id="editor-open", variant="tonal", size="small",
                                    prepend_icon="mdi-pencil", disabled=("busy || !assign_case",),
                                    click=(ctrl.editor_open, "[assign_case]"))
                            v3.VBtn("Remove", id="editor-remove", variant="text", size="small", color="error",
                                    prepend_icon="mdi-delete", disabled=("busy || !assign_case",), classes="ml-2",
                                    click="editor_confirm = assign_case")
                        # Asked once more before a case is deleted (nothing brings it back).
                        with html.Div(v_if="editor_confirm && editor_confirm === assign_case",
                                      classes="d-flex align-center flex-wrap mb-3", id="editor-confirm"):
                            html.Span("Remove {{ editor_confirm }} from the department's cases?", classes="text-body-2")
                            v3.VBtn("Remove it", id="editor-remove-confirmed", color="error", variant="flat",
                                    size="small", classes="ml-2", disabled=("busy",),
                                    click=(ctrl.editor_remove, "[editor_confirm]"))
                            v3.VBtn("Keep it", id="editor-remove-cancelled", variant="text", size="small",
                                    classes="ml-1", click="editor_confirm = null")
                        html.Div("Assign it", classes="section-title")
                        v3.VSelect(v_model=("assign_trainee", None), items=("editor_trainees",), label="Trainee",
                                   clearable=True, density="compact", id="assign-trainee", hide_details=True,
                                   classes="mb-2")
                        v3.VSelect(v_model=("assign_cohort", None), items=("editor_cohorts",), label="or cohort",
                                   clearable=True, density="compact", id="assign-cohort", hide_details=True,
                                   classes="mb-2")
                        v3.VTextField(v_model=("assign_due", ""), label="Due (optional)", type="date",
                                      density="compact", id="assign-due", hide_details=True)
                    with v3.VCardActions():
                        v3.VBtn("Assign", id="assign", color="primary", variant="flat",
                                disabled=("busy || !assign_case || !(assign_trainee || assign_cohort)",),
                                click=(ctrl.editor_assign, "[assign_case, assign_trainee, assign_cohort, assign_due]"),
                                prepend_icon="mdi-account-arrow-right")


def _programme() -> None:
    """The programme view: per case, how the cohort chosen does (it follows the Scenario filter of the attempts)."""
    with _section("Programme"):
        with v3.VCardText():
            with v3.VRow(dense=True, align="center"):
                with v3.VCol(cols=12, md=3):
                    v3.VSelect(v_model=("review_cohort", None), items=("programme_cohorts",), label="Cohort",
                               clearable=True, density="compact", id="review-cohort", hide_details=True)
                with v3.VCol(cols=12, md=9):
                    html.Div("Per case, for the cohort chosen (all trainees if none) and the Scenario filter below: "
                             "pass rate, grades, the cohort's CUSUM (acceptable 10%, unacceptable 30% failures), dose "
                             "and fluoroscopy time, the most frequent flags.", classes="text-body-2 text-grey")
            html.Div("No finished or abandoned attempts for this choice yet.", v_if="!programme_html",
                     classes="text-body-2 text-grey mt-2")
            html.Div(v_html=("programme_html",), classes="programme mt-2", id="programme")
