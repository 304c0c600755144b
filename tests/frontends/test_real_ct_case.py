"""A real lumbar CT with its TotalSegmentator vertebra labels (tests/data/totalsegmentator_lumbar,
Apache-2.0), end to end from the command line: import, landmarks, parts and canal contents, a TFESI
and an ILESI case at L4-L5 with their expert paths, scored attempts, a report and an explanation.

The CT comes in from a folder and files named after a patient, with the name in its header too: the name
must appear in nothing spinesim stores or writes (issue 23's identity sentinel), the database included."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import scenarios
from anatomy_models.store import load_anatomy
from frontends.cli import main

REAL_CT = Path(__file__).parents[1] / "data" / "totalsegmentator_lumbar"
LIBRARY = Path(scenarios.__file__).parent / "library"


SENTINEL = "DOE^JANE-SENTINEL"


@pytest.fixture(scope="module")
def real_ct(spinesim_home, tmp_path_factory):
    """The real CT imported under the name ``real-lumbar``, from a folder and files named :data:`SENTINEL`,
    which its NIfTI header's description also holds."""
    import nibabel

    folder = tmp_path_factory.mktemp("sources") / SENTINEL
    folder.mkdir()
    ct = nibabel.load(REAL_CT / "ct_lumbar.nii.gz")
    ct.header["descrip"] = SENTINEL.encode()
    nibabel.save(ct, folder / f"{SENTINEL} ct.nii.gz")
    shutil.copyfile(REAL_CT / "totalseg_lumbar.nii.gz", folder / f"{SENTINEL} labels.nii.gz")
    assert main(["anatomy", "import", str(folder / f"{SENTINEL} ct.nii.gz"), "--labels",
                 str(folder / f"{SENTINEL} labels.nii.gz"), "--label-format", "totalsegmentator:v2",
                 "-o", "real-lumbar"]) == 0
    return load_anatomy("real-lumbar")


def _identity_found(*roots: Path) -> list[str]:
    """Where the sentinel's name (or a part of it) is, in the files under ``roots`` and in their names."""
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if "SENTINEL" in path.name.upper() or "JANE" in path.name.upper():
                found.append(f"the name of {path}")
            if path.is_file():
                data = path.read_bytes()
                # (not "JANE" alone: four letters turn up in the base64 of a page's images)
                found += [f"{needle.decode()} in {path}" for needle in (b"SENTINEL", b"DOE^JANE") if needle in data]
    return found


def _stored_attempt(database: str, case: Path, log: Path, report: dict) -> None:
    """The attempt of ``log`` in the department's database as the web app keeps one: the case saved by an
    instructor, the trainee's actions one by one, the report, an instructor's comment at a step."""
    from frontends.store import Store

    store = Store(database)
    ada = store.add_user("ada", "instructor", "correct horse")
    ben = store.add_user("ben", "trainee", "battery staple")
    header, *actions = [json.loads(line) for line in log.read_text().splitlines()]
    store.save_case(header["scenario"], case.read_text(), by="ada")
    attempt = store.start_attempt(ben.id, header["scenario"], header["seed"])
    for seq, record in enumerate(actions, start=1):
        store.append_action(attempt, seq, record)
    store.finish_attempt(attempt, report)
    store.add_comment(attempt, ada.id, "The lateral confirmed the depth.", step=len(actions))
    store.engine.dispose()


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
    reports = {}
    for case in (tfesi, ilesi):
        log = tmp_path / f"{case.stem}.jsonl"
        assert main(["run", str(case), "--expert", "--log", str(log)]) == 0
        capsys.readouterr()
        if case == tfesi:  # the trajectory view: measured from the drawn L5 SAP
            assert "gun barrel (Scotty dog L4 left)" in log.read_text()
        assert main(["score", str(log), "--scenario", str(case), "--json"]) == 0
        reports[case] = json.loads(capsys.readouterr().out)
        assert reports[case]["passed"] and reports[case]["grade"] >= 85, reports[case]
    page = tmp_path / "report.html"
    assert main(["report", str(tmp_path / f"{tfesi.stem}.jsonl"), "--scenario", str(tfesi), "-o", str(page),
                 "--pixels", "128"]) == 0
    assert "safe triangle" in page.read_text()
    explained = tmp_path / "explained"
    assert main(["explain", str(ilesi), "-o", str(explained), "--pixels", "128"]) == 0
    assert (explained / "index.html").stat().st_size > 10_000
    # The patient's name is nowhere: not in the stored anatomy, the logs, the report, the explanation, the
    # exports, the department's database (the case, the attempt, its actions, report and comment) or its records.
    database = f"sqlite:///{tmp_path / 'department.db'}"
    _stored_attempt(database, tfesi, tmp_path / f"{tfesi.stem}.jsonl", reports[tfesi])
    for kind in ("csv", "xapi"):
        assert main(["attempts", "export", "--format", kind, "--db", database, "-o", str(tmp_path / f"records.{kind}")]) == 0
    for kind in ("dicom", "nifti"):
        assert main(["anatomy", "export", "real-lumbar", "--format", kind, "-o", str(tmp_path / kind)]) == 0
    capsys.readouterr()
    assert _identity_found(tmp_path, Path(real_ct.directory)) == []


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


@pytest.mark.parametrize("view", ["ap", "lateral"])
def test_the_real_cts_fluoroscopy_shows_its_own_vertebrae_where_its_labels_put_them(real_ct, view):
    """The shown shot's detail (bone dark) follows the CT's own labelled lumbar vertebrae projected through the
    shot's pose: the picture is this CT's bone, in its place, not a mirrored, shifted or other patient's.

    The vertebra labels' voxels are counted along each ray (an independent projection of the truth); the shot's
    and this map's detail (each less its 8-pixel blur) correlate at 0.28 (AP) and 0.47 (lateral) measured, and at
    most 0.11 with the map mirrored or moved 8 pixels (~20 mm)."""
    from scipy import ndimage

    from frontends.commands.fluoro import carm_for_view
    from simulator.imaging.dose import Technique, shot_technique
    from simulator.imaging.fluoro import render_fluoro

    pixels = 128
    carm = carm_for_view(real_ct, view, "L3", "left", None, None, pixels)
    shown = render_fluoro(real_ct, carm, dose=shot_technique(real_ct, carm, "pulse", Technique()), seed=1)
    vertebrae = [label.id for label in real_ct.label_table if label.name.split(".")[0] in ("L1", "L2", "L3", "L4", "L5")]
    u, v = np.rint(carm.project(real_ct.ct.voxel_to_world(np.argwhere(np.isin(real_ct.labels.array, vertebrae))))).astype(int).T
    inside = (u >= 0) & (u < pixels) & (v >= 0) & (v < pixels)
    bone_along_rays = np.zeros((pixels, pixels))
    np.add.at(bone_along_rays, (v[inside], u[inside]), 1.0)

    def detail(image: np.ndarray) -> np.ndarray:
        image = ndimage.gaussian_filter(image.astype(float), 1.0)
        return image - ndimage.gaussian_filter(image, 8.0)

    field = ndimage.binary_erosion(shown.field, iterations=10)
    dark, truth = detail(-shown.pixels.astype(float)), detail(bone_along_rays)
    correlation = lambda other: float(np.corrcoef(dark[field], other[field])[0, 1])  # noqa: E731
    aligned = correlation(truth)
    wrong = [correlation(truth[:, ::-1])] + [correlation(np.roll(truth, shift, axis)) for shift in (-8, 8) for axis in (0, 1)]
    assert aligned > 0.2 and aligned > 2 * max(wrong), (view, aligned, wrong)
