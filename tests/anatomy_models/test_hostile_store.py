"""Damaged stored-anatomy folders, made by the tests: each is refused as 'this stored anatomy is damaged',
naming the folder, and never raises anything but SpinesimError (a bounded hypothesis fuzz of the
manifest and of the CT file's bytes)."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.store import load_anatomy, save_anatomy, stored_anatomy_names, stored_anatomy_summary
from tests.anatomy_models.test_anatomy import ball_anatomy
from tests.fuzzing import examples


def _edit_manifest(**fields):
    def edit(folder: Path) -> None:
        path = folder / "anatomy.json"
        manifest = json.loads(path.read_text())
        manifest.update(fields)
        path.write_text(json.dumps(manifest))
    return edit


def _corrupt_deflate(folder: Path) -> None:
    data = bytearray((folder / "ct.nrrd").read_bytes())
    start = data.index(b"\n\n") + 30
    data[start:start + 20] = b"\xff" * 20
    (folder / "ct.nrrd").write_bytes(bytes(data))


def _replace_with_folder(folder: Path) -> None:
    (folder / "ct.nrrd").unlink()
    (folder / "ct.nrrd").mkdir()


DAMAGE = {
    "CT file missing": (lambda folder: (folder / "ct.nrrd").unlink(), "its file ct.nrrd is missing"),
    "label map missing": (lambda folder: (folder / "labels.nrrd").unlink(), "its file labels.nrrd is missing"),
    "CT file is a folder": (_replace_with_folder, "its file ct.nrrd is missing"),
    "CT truncated": (lambda folder: (folder / "ct.nrrd").write_bytes((folder / "ct.nrrd").read_bytes()[:-200]),
                     "ct.nrrd: "),
    "CT deflate stream corrupt": (_corrupt_deflate, "ct.nrrd: "),
    "metadata a list": (_edit_manifest(metadata=[1, 2]), "field 'metadata' is of type list"),
    "metadata text": (_edit_manifest(metadata="x"), "field 'metadata' is of type str"),
    "CT name a number": (_edit_manifest(ct=5), "field 'ct' is of type int"),
    "CT name outside the folder": (_edit_manifest(ct="../../../../etc/hostname"), "not a file name in the folder"),
    "labels name a number": (_edit_manifest(labels=7), "field 'labels' is of type int"),
    "landmarks a list": (_edit_manifest(landmarks=[1, 2]), "field 'landmarks' is of type list"),
    "landmark text": (_edit_manifest(landmarks={"a": "abc"}), "landmark 'a' must be three finite"),
    "landmark a mapping": (_edit_manifest(landmarks={"a": {"x": 1}}), "landmark 'a' must be three finite"),
    "label table text": (_edit_manifest(label_table="x"), "field 'label_table' is of type str"),
    "label table entry without id": (_edit_manifest(label_table=[{"name": "L3", "tissue": "cortical_bone"}]),
                                     "missing field"),
    "CT field missing": (lambda folder: _drop_field(folder, "ct"), "field 'ct' is missing"),
    "manifest a list": (lambda folder: (folder / "anatomy.json").write_text("[1]"), "holds a list"),
    "manifest not JSON": (lambda folder: (folder / "anatomy.json").write_text("{not json"), "not valid JSON"),
    "manifest not UTF-8": (lambda folder: (folder / "anatomy.json").write_bytes(b"\xff\xfe{}"), "not valid JSON"),
    "manifest nested deeply": (lambda folder: (folder / "anatomy.json").write_text("[" * 100_000 + "]" * 100_000),
                               "nested too deeply"),
    "label map of the CT's type": (lambda folder: shutil.copy(folder / "ct.nrrd", folder / "labels.nrrd"),
                                   "label ids must be unsigned"),
}


def _drop_field(folder: Path, key: str) -> None:
    manifest = json.loads((folder / "anatomy.json").read_text())
    del manifest[key]
    (folder / "anatomy.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_stored_anatomy_is_named_and_refused(damage):
    name = "damaged-" + damage.replace(" ", "-").replace("'", "")
    folder = save_anatomy(ball_anatomy(), name)
    damage_folder, expected = DAMAGE[damage]
    damage_folder(folder)
    with pytest.raises(SpinesimError) as raised:
        load_anatomy(name)
    message = str(raised.value)
    assert message.startswith(f"{folder}: this stored anatomy is damaged: ")
    assert expected in message and message.endswith("Re-import or delete it.")
    assert len(message) < 600  # a deep or long manifest is not echoed
    summary = stored_anatomy_summary(name) if name in stored_anatomy_names() else None
    assert summary is None or summary["source"] in ("test ball", "damaged: re-import or delete it")


def test_the_listing_survives_a_damaged_manifest():
    save_anatomy(ball_anatomy(), "listing-good")
    (save_anatomy(ball_anatomy(), "listing-bad") / "anatomy.json").write_text("[")
    names = stored_anatomy_names()
    assert {"listing-good", "listing-bad"} <= set(names)
    assert stored_anatomy_summary("listing-good")["source"] == "test ball"
    bad = stored_anatomy_summary("listing-bad")
    assert bad["source"] == "damaged: re-import or delete it" and "listing-bad" in bad["damaged"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return ball_anatomy().save(tmp_path_factory.mktemp("pristine") / "ball")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=12)
FIELDS = ["format", "version", "ct", "labels", "label_table", "landmarks", "directions", "metadata"]


def _load_or_refuse(folder: Path) -> None:
    try:
        anatomy = Anatomy.load(folder)
    except SpinesimError as error:
        assert str(folder) in str(error)
        return
    assert anatomy.ct.shape == anatomy.labels.shape


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=3),
       removed=st.sets(st.sampled_from(FIELDS), max_size=2),
       entry=st.dictionaries(st.sampled_from(["id", "name", "tissue"]), JSON_VALUES, max_size=3))
def test_fuzzed_manifests_load_or_are_refused(pristine, tmp_path_factory, changes, removed, entry):
    folder = tmp_path_factory.mktemp("fuzz") / "ball"
    shutil.copytree(pristine, folder)
    manifest = json.loads((folder / "anatomy.json").read_text())
    manifest["label_table"].append(entry)
    manifest.update(changes)
    for key in removed:
        manifest.pop(key, None)
    (folder / "anatomy.json").write_text(json.dumps(manifest))
    _load_or_refuse(folder)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["ct.nrrd", "labels.nrrd"]), kept=st.just(1.0) | st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4))
def test_truncated_or_flipped_volume_files_load_or_are_refused(pristine, tmp_path_factory, name, kept, flips):
    folder = tmp_path_factory.mktemp("fuzz") / "ball"
    shutil.copytree(pristine, folder)
    data = bytearray((folder / name).read_bytes())
    header = data.index(b"\n\n") + 2  # headers are the NRRD reader's own fuzz (harden-images); here the data
    for where, value in flips:
        data[header + int(where * (len(data) - header - 1))] = value
    (folder / name).write_bytes(bytes(data[: header + int((len(data) - header) * kept)]))
    _load_or_refuse(folder)
