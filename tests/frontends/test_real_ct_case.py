"""A real lumbar CT with its TotalSegmentator vertebra labels (tests/data/totalsegmentator_lumbar,
Apache-2.0), end to end from the command line: import, landmarks, parts and canal contents, a TFESI
and an ILESI case at L4-L5 with their expert paths, scored attempts, a report and an explanation."""

import json
from pathlib import Path

import numpy as np
import pytest

import scenarios
from anatomy_models.store import load_anatomy
from frontends.cli import main

REAL_CT = Path(__file__).parents[1] / "data" / "totalsegmentator_lumbar"
LIBRARY = Path(scenarios.__file__).parent / "library"


@pytest.fixture(scope="module")
def real_ct(spinesim_home):
    """The real CT imported under the name ``real-lumbar``."""
    assert main(["anatomy", "import", str(REAL_CT / "ct_lumbar.nii.gz"), "--labels",
                 str(REAL_CT / "totalseg_lumbar.nii.gz"), "--label-format", "totalsegmentator:v2",
                 "-o", "real-lumbar"]) == 0
    return load_anatomy("real-lumbar")


def _case_on_the_real_ct(folder: Path, library_id: str, needle: str | None = None) -> Path:
    """The library case ``library_id`` on the imported CT (and ``needle``, a YAML flow mapping)."""
    text = (LIBRARY / f"{library_id}.yaml").read_text()
    text = text.replace("anatomy: {builtin: default}", "anatomy: {stored: real-lumbar}")
    text = text.replace(f"id: {library_id}", f"id: {library_id}-real-ct")
    if needle:
        text = "\n".join(f"needle: {needle}" if line.startswith("needle:") else line for line in text.splitlines())
    path = folder / f"{library_id}-real-ct.yaml"
    path.write_text(text)
    return path


def test_import_draws_parts_and_the_canal_from_the_vertebra_labels(real_ct, capsys):
    names = {label.name for label in real_ct.label_table}
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert {f"{level}.body", f"{level}.pedicle.left", f"{level}.SAP.right", f"{level}.IAP.left",
                f"{level}.lamina.right", f"{level}.spinous_process", f"{level}.transverse_process.left"} <= names
    assert {"L4-L5.disc.annulus", "L4-L5.disc.nucleus", "ligamentum_flavum.L4-L5", "dural_sac.dura", "dural_sac.csf",
            "cauda_equina", "epidural_space", "nerve_root.L4.left", "dorsal_root_ganglion.L4.left"} <= names
    assert "L4-L5.safe_triangle.left" in real_ct.landmarks and "L4-L5.interlaminar_window.center" in real_ct.landmarks
    # The sac lies in the canal, in front of the flavum's interlaminar part and behind the L4-L5 disc (LPS: +y is
    # posterior). The flavum's capsular parts line the facet joints and the foramina, beside the sac, not behind it.
    sac = real_ct.ct.voxel_to_world(np.argwhere(real_ct.mask("dural_sac")))
    sac_y = sac[:, 1].mean()
    flavum = real_ct.ct.voxel_to_world(np.argwhere(real_ct.mask("ligamentum_flavum.L4-L5")))
    flavum_y = flavum[np.abs(flavum[:, 0] - sac[:, 0].mean()) < 5.0, 1].mean()
    disc_y = real_ct.ct.voxel_to_world(np.argwhere(real_ct.mask("L4-L5.disc")))[:, 1].mean()
    assert disc_y < sac_y < flavum_y
    assert main(["anatomy", "info", "real-lumbar"]) == 0
    assert "structures drawn from the vertebra labels" in capsys.readouterr().out


def test_tfesi_and_ilesi_cases_solve_run_score_report_and_explain(real_ct, tmp_path, capsys):
    # The patient is large (skin to the L4-L5 foramen about 97 mm): the 5-inch needle, as
    # tfesi-bmi40-l4l5-left (clinical.md §2.2, §4.9 [S1][S17][S23]).
    tfesi = _case_on_the_real_ct(tmp_path, "tfesi-default", "{kind: quincke, gauge: 22, length_in: 5.0}")
    ilesi = _case_on_the_real_ct(tmp_path, "ilesi-default")
    capsys.readouterr()
    assert main(["scenario", "validate", "--solve", str(tfesi), str(ilesi)]) == 0
    solved = capsys.readouterr().out
    assert solved.count("expert path") == 2
    for case in (tfesi, ilesi):
        log = tmp_path / f"{case.stem}.jsonl"
        assert main(["run", str(case), "--expert", "--log", str(log)]) == 0
        capsys.readouterr()
        if case == tfesi:  # the trajectory view: measured from the drawn L5 SAP
            assert "gun barrel (Scotty dog L4 left)" in log.read_text()
        assert main(["score", str(log), "--scenario", str(case), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["passed"] and report["grade"] >= 85, report
    page = tmp_path / "report.html"
    assert main(["report", str(tmp_path / f"{tfesi.stem}.jsonl"), "--scenario", str(tfesi), "-o", str(page),
                 "--pixels", "128"]) == 0
    assert "safe triangle" in page.read_text()
    explained = tmp_path / "explained"
    assert main(["explain", str(ilesi), "-o", str(explained), "--pixels", "128"]) == 0
    assert (explained / "index.html").stat().st_size > 10_000


def test_radicular_arteries_from_the_labels_make_vascular_uptake_possible_on_the_real_ct(real_ct, tmp_path):
    """Each lumbar foramen of the TFESI levels has its radicular artery (one connected vessel on the
    3 mm grid) at the safe triangle's depth, and a transforaminal needle that enters the L4 left one
    shows the arterial pattern, the complication the generated patient teaches (clinical.md §2.2 [S2])."""
    from scipy import ndimage

    from scenarios.schema import load_scenario
    from simulator.session.fold import Session
    from tests.simulator.attempts import nearest_points, place_toward

    for level in ("L3", "L4", "L5"):
        for side in ("left", "right"):
            name = f"radicular_artery.{level}.{side}"
            assert real_ct.label_table.by_name(name).tissue == "blood"
            assert ndimage.label(real_ct.mask(name), np.ones((3, 3, 3)))[1] == 1, name
    artery = real_ct.ct.voxel_to_world(np.argwhere(real_ct.mask("radicular_artery.L4.left")))
    triangle = real_ct.landmarks["L4-L5.safe_triangle.left"]
    assert np.linalg.norm(artery - triangle, axis=1).min() <= 3.0  # one voxel of the 3 mm grid
    # Never through bone or the dura: the CT's bone stays bone.
    assert real_ct.ct.array[real_ct.mask("radicular_artery")].max() < 400

    case = _case_on_the_real_ct(tmp_path, "tfesi-default", "{kind: quincke, gauge: 22, length_in: 5.0}")
    session = Session(load_scenario(case), real_ct)
    depth = place_toward(session, nearest_points(session, "radicular_artery.L4.left", session.target.point),
                         root_clearance_mm=0.0, avoid_groups=("dural_sac",),
                         avoid_tissues=("disc_annulus", "disc_nucleus", "air"))
    events = session.apply({"type": "advance", "t": 10, "mm": depth})
    assert next(e for e in events if e.kind == "vessel_puncture").data["arterial"]
    shown = session.apply({"type": "inject_contrast", "t": 12, "ml": 1.0})
    assert shown[0].data["pattern"] == "arterial" and shown[0].severity == "unsafe"
