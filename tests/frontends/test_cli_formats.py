"""`spinesim anatomy import/info/export` with NIfTI, label maps, segmentations and meshes."""

import json

import numpy as np
import pytest
import slicerio
import trimesh

from anatomy_models.labelmaps import TOTALSEGMENTATOR_V2
from anatomy_models.nifti import read_nifti, write_nifti
from anatomy_models.nrrd import read_nrrd
from anatomy_models.store import load_anatomy
from anatomy_models.volume import Volume
from frontends.cli import main

V2 = {name: i for i, name in enumerate(TOTALSEGMENTATOR_V2, start=1)}


@pytest.fixture()
def ct_and_labels(tmp_path):
    """A small CT (2 mm) with two bright blocks, and a TotalSegmentator v2 label map of them."""
    ct = Volume.from_spacing(np.full((30, 24, 20), 40, np.int16), (2.0, 2.0, 2.5), origin=(-30.0, -20.0, 50.0))
    labels = np.zeros(ct.shape, np.uint8)
    labels[10:20, 8:16, 2:8] = V2["vertebrae_L5"]
    labels[10:20, 8:16, 11:17] = V2["vertebrae_L4"]
    labels[10:20, 16:20, 2:17] = V2["autochthon_left"]
    ct.array[labels == V2["vertebrae_L4"]] = 900
    ct.array[labels == V2["vertebrae_L5"]] = 900
    return write_nifti(ct, tmp_path / "ct.nii.gz"), write_nifti(ct.with_array(labels), tmp_path / "seg.nii.gz"), labels


def test_import_nifti_with_totalsegmentator_labels_and_export_each_format(tmp_path, ct_and_labels, capsys):
    ct_path, seg_path, source_labels = ct_and_labels
    assert main(["anatomy", "import", str(ct_path), "--labels", str(seg_path),
                 "--label-format", "totalsegmentator:v2", "-o", "ts-case"]) == 0
    assert main(["anatomy", "info", "ts-case"]) == 0
    info = capsys.readouterr().out
    assert "L4" in info and "L5" in info and "muscle.erector_spinae.left" in info
    anatomy = load_anatomy("ts-case")
    np.testing.assert_array_equal(anatomy.mask("L4"), source_labels == V2["vertebrae_L4"])

    # NIfTI: CT, labels and the label table beside them; they import back with table:labels.json
    assert main(["anatomy", "export", "ts-case", "--format", "nifti", "-o", str(tmp_path / "nifti")]) == 0
    table = json.loads((tmp_path / "nifti" / "labels.json").read_text())
    assert {row["name"] for row in table} == {"L4", "L5", "muscle.erector_spinae.left"}
    np.testing.assert_array_equal(read_nifti(tmp_path / "nifti" / "ct.nii.gz").array, anatomy.ct.array)
    assert main(["anatomy", "import", str(tmp_path / "nifti" / "ct.nii.gz"), "--labels",
                 str(tmp_path / "nifti" / "labels.nii.gz"), "--label-format",
                 f"table:{tmp_path / 'nifti' / 'labels.json'}", "-o", "ts-again"]) == 0
    np.testing.assert_array_equal(load_anatomy("ts-again").labels.array, anatomy.labels.array)

    # NRRD: the labels are a Slicer segmentation with the structure names
    assert main(["anatomy", "export", "ts-case", "--format", "nrrd", "-o", str(tmp_path / "nrrd")]) == 0
    slicer = slicerio.read_segmentation(str(tmp_path / "nrrd" / "labels.seg.nrrd"))
    assert sorted(s["name"] for s in slicer["segments"]) == ["L4", "L5", "muscle.erector_spinae.left"]
    np.testing.assert_allclose(read_nrrd(tmp_path / "nrrd" / "ct.nrrd").affine, anatomy.ct.affine)
    assert main(["anatomy", "import", str(tmp_path / "nrrd" / "labels.seg.nrrd"), "-o", "from-seg"]) == 0
    assert {label.name for label in load_anatomy("from-seg").label_table} == {"L4", "L5", "muscle.erector_spinae.left"}

    # STL: one closed surface per structure
    assert main(["anatomy", "export", "ts-case", "--format", "stl", "-o", str(tmp_path / "stl")]) == 0
    files = sorted(p.name for p in (tmp_path / "stl").iterdir())
    assert files == ["L4.stl", "L5.stl", "muscle.erector_spinae.left.stl"]
    l4 = trimesh.load(str(tmp_path / "stl" / "L4.stl"))
    assert l4.is_watertight and l4.volume == pytest.approx(20 * 16 * 15 * 0.9, rel=0.25)  # smoothed 20x16x15 mm block

    # GLB: the same structures as named nodes of one file for 3D viewers
    assert main(["anatomy", "export", "ts-case", "--format", "glb", "-o", str(tmp_path / "ts-case.glb")]) == 0
    scene = trimesh.load_scene(str(tmp_path / "ts-case.glb"))
    assert sorted(scene.graph.nodes_geometry) == ["L4", "L5", "muscle.erector_spinae.left"]


def test_per_class_folder_resampled_labels_and_spacing(tmp_path, ct_and_labels, capsys):
    ct_path, _, source_labels = ct_and_labels
    ct = read_nifti(ct_path)
    folder = tmp_path / "segmentations"
    coarse = Volume.from_spacing(source_labels[::2, ::2, :], ct.spacing * [2, 2, 1], origin=ct.origin + [1.0, 1.0, 0.0])
    for name in ("vertebrae_L4", "vertebrae_L5", "autochthon_left"):
        write_nifti(coarse.with_array((coarse.array == V2[name]).astype(np.uint8)), folder / f"{name}.nii.gz")
    assert main(["anatomy", "info", str(folder)]) == 0
    assert "vertebrae_L4 -> L4" in capsys.readouterr().out
    assert main(["anatomy", "import", str(ct_path), "--labels", str(folder), "--spacing", "2.5", "-o", "folder-case"]) == 0
    printed = capsys.readouterr().out
    assert "label map resampled onto the CT grid with nearest neighbour" in printed
    assert "resampled to 2.5 mm voxels" in printed
    anatomy = load_anatomy("folder-case")
    np.testing.assert_allclose(anatomy.ct.spacing, 2.5)
    assert anatomy.labels.shape == anatomy.ct.shape and anatomy.mask("L4").sum() > 0


def test_import_mesh_folder_with_spacing_and_units(tmp_path, capsys):
    folder = tmp_path / "meshes"
    folder.mkdir()
    trimesh.creation.icosphere(subdivisions=3, radius=1.2).export(str(folder / "L4.stl"))  # cm
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).apply_translation([0, 0, -3.0]).export(str(folder / "L4-L5.disc.annulus.obj"))
    assert main(["anatomy", "info", str(folder)]) == 0
    assert "L4-L5.disc.annulus" in capsys.readouterr().out
    assert main(["anatomy", "import", str(folder), "--mesh-units", "cm", "--spacing", "1", "-o", "mesh-case"]) == 0
    anatomy = load_anatomy("mesh-case")
    assert anatomy.mask("L4").sum() == pytest.approx(4 / 3 * np.pi * 12.0 ** 3, rel=0.03)
    assert anatomy.mask("L4-L5.disc").sum() == pytest.approx(1000, rel=0.03)
    assert anatomy.label_table.by_name("L4-L5.disc.annulus").tissue == "disc_annulus"


@pytest.mark.parametrize("case, message", [
    ("far_labels", "does not overlap the CT's"),
    ("format_without_labels", "--label-format needs a label map"),
    ("bad_format", "unknown label format 'verse:2'"),
])
def test_import_errors_are_one_line(tmp_path, ct_and_labels, capsys, case, message):
    ct_path, seg_path, labels = ct_and_labels
    args = ["anatomy", "import", str(ct_path), "-o", "bad"]
    if case == "far_labels":
        far = Volume.from_spacing(labels, (2.0, 2.0, 2.5), origin=(900.0, 0.0, 0.0))
        args += ["--labels", str(write_nifti(far, tmp_path / "far.nii.gz")), "--label-format", "totalsegmentator:v2"]
    elif case == "format_without_labels":
        args += ["--label-format", "verse"]
    else:
        args += ["--labels", str(seg_path), "--label-format", "verse:2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and err.strip().startswith("error:")
