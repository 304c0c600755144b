"""What the log's actions and the engine's events are called where a person reads them (the report's action
log, the web app's event list, ``spinesim run``): clinical words, never an identifier.

The engine keeps its identifiers (``root_penetration``, ``fluoro_shot``) for scoring and storage; these tables
give each one the words a pain physician uses, and :func:`action_summary` says what an action did without
coordinates (structures by :func:`anatomy_models.structures.clinical_name`, the C-arm by its angles).
"""

from __future__ import annotations

from simulator.imaging.carm import CArm
from simulator.session import actions as act
from simulator.session.fold import AGENT_WORDS, READING_WORDS

# Every event kind of simulator.session.fold (its module docstring's table), as a heading.
EVENT_TITLES: dict[str, str] = {
    "needle_placed": "skin puncture", "redirect": "redirection", "bone_contact": "bone contact",
    "hub_at_skin": "needle in to the hub", "needle_removed": "needle out", "target_reached": "on target",
    "target_left": "off target", "joint_entered": "into the joint", "dural_puncture": "dural puncture",
    "csf_flashback": "CSF at the hub", "blood_flashback": "blood at the hub", "cord_contact": "spinal cord",
    "cauda_equina_contact": "cauda equina", "paraesthesia": "paraesthesia", "root_penetration": "into a nerve root",
    "vessel_puncture": "vessel puncture", "intradiscal": "into the disc", "loss_of_resistance": "syringe",
    "contrast": "contrast", "contrast_read": "your reading", "medication": "injectate",
    "capsule_rupture": "capsule rupture", "stimulation": "stimulation", "lesion": "heat lesion",
    "carm_moved": "C-arm", "fluoro_shot": "fluoroscopy", "probe_placed": "ultrasound probe", "hint_shown": "hint",
    "finished": "finished",
}
# Every action type of simulator.session.actions, as a heading.
ACTION_TITLES: dict[str, str] = {
    "place_needle": "needle placed", "advance": "advance", "withdraw": "withdraw", "redirect": "redirect",
    "set_carm": "C-arm moved", "fluoro_shot": "fluoroscopy", "place_probe": "ultrasound probe",
    "inject_contrast": "contrast injected", "inject_medication": "injectate", "read_contrast": "contrast named",
    "check_loss_of_resistance": "loss-of-resistance check", "stimulate": "stimulation", "lesion": "heat lesion",
    "show_hint": "hint", "finish": "finish",
}
_RUNS = {"pulse": "a pulse", "live": "live", "dsa": "DSA"}


def event_title(kind: str) -> str:
    """An event kind as a heading (:data:`EVENT_TITLES`; an unknown kind spelt out).

    >>> event_title("root_penetration"), event_title("new_kind")
    ('into a nerve root', 'new kind')
    """
    return EVENT_TITLES.get(kind, kind.replace("_", " "))


def action_title(kind: str) -> str:
    """An action type as a heading (:data:`ACTION_TITLES`).

    >>> action_title("fluoro_shot"), action_title("check_loss_of_resistance")
    ('fluoroscopy', 'loss-of-resistance check')
    """
    return ACTION_TITLES.get(kind, kind.replace("_", " "))


def action_summary(action: act.Action) -> str:
    """What ``action`` did, in words and without coordinates (empty when the title says it all).

    >>> action_summary(act.FluoroShot(t=1.0, mode="dsa", seconds=3.0)), action_summary(act.Advance(t=2.0, mm=12.5))
    ('DSA 3.0 s', '12.5 mm')
    >>> action_summary(act.SetCarm(t=3.0, primary_deg=25.0, secondary_deg=-4.0, field_cm=15.0))
    'LAO 25° CAUD 4°, 15 cm field'
    >>> action_summary(act.InjectMedication(t=4.0, ml=2.0, agent="steroid_nonparticulate"))
    '2 mL of non-particulate steroid'
    """
    match action:
        case act.Advance() | act.Withdraw():
            return f"{action.mm:.1f} mm"
        case act.SetCarm():
            carm = CArm(primary_deg=action.primary_deg, secondary_deg=action.secondary_deg)
            extras = ([f"{action.field_cm:g} cm field"] if action.field_cm else []) + (
                [f"shutters at {action.shutters:.0%}"] if action.shutters else [])
            return ", ".join([carm.label] + extras)
        case act.FluoroShot():
            seconds = f" {action.seconds:.1f} s" if action.seconds and action.mode != "pulse" else ""
            return _RUNS[action.mode] + seconds
        case act.InjectContrast():
            return f"{action.ml:g} mL"
        case act.InjectMedication():
            return f"{action.ml:g} mL of {AGENT_WORDS[action.agent]}"
        case act.ReadContrast():
            return f"read as {READING_WORDS[action.reading]}"
        case act.Stimulate():
            return f"{action.mode} {action.volts:g} V"
        case act.Lesion():
            return f"{action.temperature_c:g} °C for {action.seconds:g} s"
        case act.PlaceProbe():
            return (action.view or "").replace("-", " ")
        case act.PlaceNeedle() if action.needle is not None:
            return f"needle {action.needle + 1} from the tray"
    return ""
