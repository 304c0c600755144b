import json

import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy, save_anatomy, stored_anatomy_names
from anatomy_models.structures import LabelTable
from anatomy_models.surfaces import SURFACE_VERSION, label_surface
from anatomy_models.volume import Volume


def ball_anatomy(radius_mm: float = 12.0, spacing: float = 1.0) -> Anatomy:
    n = int(2 * (radius_mm + 4) / spacing)
    ct = Volume.from_spacing(np.full((n, n, n), -100, np.int16), (spacing,) * 3, origin=(-(n - 1) * spacing / 2,) * 3)
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1)
    inside = np.linalg.norm(ct.voxel_to_world(ijk), axis=-1) <= radius_mm
    ct.array[inside] = 1000
    table = LabelTable()
    bone = table.add("L3", "cortical_bone")
    labels = ct.with_array(np.where(inside, bone.id, 0).astype(np.uint16))
    return Anatomy(ct=ct, label_table=table, labels=labels,
                   landmarks={"L3.center": [0, 0, 0]}, directions={"L3.superior_endplate.normal": [0, 0, 1]},
                   metadata={"source": "test ball"})


def test_save_load_round_trip(tmp_path):
    anatomy = ball_anatomy()
    anatomy.save(tmp_path / "ball")
    back = Anatomy.load(tmp_path / "ball")
    np.testing.assert_array_equal(back.ct.array, anatomy.ct.array)
    np.testing.assert_array_equal(back.labels.array, anatomy.labels.array)
    np.testing.assert_allclose(back.ct.affine, anatomy.ct.affine)
    assert back.label_table.by_name("L3").tissue == "cortical_bone"
    np.testing.assert_allclose(back.landmark("L3.center"), [0, 0, 0])
    np.testing.assert_allclose(back.direction("L3.superior_endplate.normal"), [0, 0, 1])
    assert back.metadata["source"] == "test ball"


def test_surface_volume_and_disk_cache(tmp_path):
    anatomy = ball_anatomy(radius_mm=12.0, spacing=0.5)
    anatomy.save(tmp_path / "ball")
    surface = anatomy.surface("L3")
    assert surface.volume == pytest.approx(4 / 3 * np.pi * 12.0 ** 3, rel=0.02)
    assert (tmp_path / "ball" / "surfaces" / f"L3.v{SURFACE_VERSION}.vtp").is_file()
    again = Anatomy.load(tmp_path / "ball").surface("L3")
    assert again.n_points == surface.n_points


def test_failed_save_keeps_the_previous_anatomy(tmp_path, monkeypatch):
    anatomy = ball_anatomy()
    anatomy.save(tmp_path / "ball")
    before = (tmp_path / "ball" / "anatomy.json").read_text()
    anatomy.metadata["source"] = "changed"
    import anatomy_models.anatomy as module

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "write_nrrd", crash)
    with pytest.raises(SpinesimError, match="ball: cannot be written .disk full.*previous copy.*kept"):
        anatomy.save(tmp_path / "ball")
    assert (tmp_path / "ball" / "anatomy.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ball"]


def test_inconsistent_parts_are_refused():
    anatomy = ball_anatomy()
    with pytest.raises(SpinesimError, match="does not match the CT's grid"):
        Anatomy(ct=anatomy.ct, label_table=anatomy.label_table, labels=anatomy.labels.sub_volume(slice(1, None)))
    with pytest.raises(SpinesimError, match="not in its label table"):
        Anatomy(ct=anatomy.ct, label_table=LabelTable(), labels=anatomy.labels)
    with pytest.raises(SpinesimError, match="landmark 'x'"):
        Anatomy(ct=anatomy.ct, landmarks={"x": [0, np.nan, 0]})
    with pytest.raises(SpinesimError, match="unit vector"):
        Anatomy(ct=anatomy.ct, directions={"n": [0, 0, 2]})
    with pytest.raises(SpinesimError, match="no landmark named 'L4.center'"):
        anatomy.landmark("L4.center")


def test_damaged_folders_give_clear_errors(tmp_path):
    with pytest.raises(SpinesimError, match="not a spinesim anatomy folder"):
        Anatomy.load(tmp_path)
    ball_anatomy().save(tmp_path / "ball")
    manifest = tmp_path / "ball" / "anatomy.json"
    manifest.write_text("{not json")
    with pytest.raises(SpinesimError, match="ball: this stored anatomy is damaged: anatomy.json is not valid JSON"):
        Anatomy.load(tmp_path / "ball")
    manifest.write_text(json.dumps({"format": "spinesim-anatomy", "version": 99}))
    with pytest.raises(SpinesimError, match="version 99 is not supported"):
        Anatomy.load(tmp_path / "ball")


def test_store_by_name():
    save_anatomy(ball_anatomy(), "ball-store-test")
    assert "ball-store-test" in stored_anatomy_names()
    assert load_anatomy("ball-store-test").name == "ball-store-test"
    with pytest.raises(SpinesimError, match="no stored anatomy called 'nope'"):
        load_anatomy("nope")
    with pytest.raises(SpinesimError, match="invalid anatomy name"):
        save_anatomy(ball_anatomy(), "../escape")


def test_tissue_map_uses_labels_then_ct_numbers():
    anatomy = ball_anatomy()
    anatomy.ct.array[0, 0, 0] = -1000  # unlabelled air in a corner
    index, names = anatomy.tissue_map()
    assert names[index[0, 0, 0]] == "air"
    assert names[index[1, 1, 1]] == "fat"  # unlabelled -100 HU
    centre = tuple(n // 2 for n in anatomy.ct.shape)
    assert names[index[centre]] == "cortical_bone"  # from the label table
    assert anatomy.tissue_map() is anatomy.tissue_map()


def test_surfaces_of_sloping_structures_have_no_voxel_terraces():
    """A slab tilted 12 deg off the grid, voxelised at 1 mm: the smoothed surface's normals on its top
    face follow the true plane (raw marching cubes there is a staircase of flat terraces)."""
    n = 64
    index = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1) - n / 2
    normal = np.array([np.sin(np.radians(12.0)), 0.0, np.cos(np.radians(12.0))])
    slab = (np.abs(index @ normal) < 8) & (np.abs(index[..., 0]) < 24) & (np.abs(index[..., 1]) < 24)
    mesh = label_surface(Volume.from_spacing(slab.astype(np.uint8), (1.0, 1.0, 1.0)), [1])
    normals, centred = np.asarray(mesh.point_data["Normals"]), mesh.points - mesh.points.mean(axis=0)
    top = (normals @ normal > 0.8) & (np.abs(centred[:, 0]) < 15) & (np.abs(centred[:, 1]) < 15)
    assert top.sum() > 500
    assert np.percentile(np.degrees(np.arccos(np.clip(normals[top] @ normal, -1, 1))), 99) < 5.0
