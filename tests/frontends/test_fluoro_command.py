import numpy as np
import pytest
from PIL import Image

from anatomy_models.anatomy import Anatomy
from anatomy_models.store import load_anatomy, save_anatomy
from anatomy_models.volume import Volume
from frontends.cli import main
from frontends.commands.fluoro import carm_for_view
from simulator.imaging.dose import AEC_KVP_STEPS, Technique, shot_technique


@pytest.fixture(scope="module")
def stored_phantom():
    hu = np.full((40, 40, 40), -1000, np.int16)
    hu[5:35, 5:35, :] = 40
    hu[15:25, 15:25, 10:30] = 700
    ct = Volume.from_spacing(hu, (3, 3, 3), origin=(-58.5, -58.5, -58.5))
    tilt = np.radians(8.0)
    anatomy = Anatomy(ct=ct, landmarks={"L4.body.center": [0.0, 0.0, 0.0]},
                      directions={"L4.superior_endplate.normal": [0.0, np.sin(tilt), np.cos(tilt)]})
    save_anatomy(anatomy, "fluoro-cli-phantom")
    return "fluoro-cli-phantom"


@pytest.mark.parametrize("arguments, label", [
    (["--view", "ap"], "AP CAUD 8°"),
    (["--view", "lateral", "--side", "right"], "RIGHT LAT"),
    (["--view", "oblique", "--angle", "30"], "LAO 30°"),
    (["--view", "clo", "--tilt", "0"], "RAO 45°"),
])
def test_fluoro_command_writes_the_view(stored_phantom, tmp_path, capsys, arguments, label):
    output = tmp_path / "shot.png"
    assert main(["fluoro", stored_phantom, "--pixels", "64", *arguments, "-o", str(output)]) == 0
    assert np.asarray(Image.open(output)).shape == (64, 64)
    printed = capsys.readouterr().out
    assert label in printed and "mGy" in printed


def test_fluoro_command_errors(stored_phantom, tmp_path, capsys):
    assert main(["fluoro", stored_phantom, "-o", str(tmp_path / "shot.jpg")]) == 1
    assert main(["fluoro", "no-such-anatomy", "-o", str(tmp_path / "shot.png")]) == 1
    assert main(["fluoro", stored_phantom, "--view", "scotty", "-o", str(tmp_path / "shot.png")]) == 1
    errors = capsys.readouterr().err
    assert ".png" in errors and "no-such-anatomy" in errors and "six_oclock" in errors


def test_fluoro_command_shows_bone_black_unless_asked_for_bone_white(stored_phantom, tmp_path):
    """The C-arm monitor's usual display by default: the bone block in the middle darker than the soft
    tissue around it; --polarity bone_white inverts it."""
    shown = {}
    for name, arguments in (("default", []), ("bone_white", ["--polarity", "bone_white"])):
        output = tmp_path / f"{name}.png"
        assert main(["fluoro", stored_phantom, "--pixels", "64", "--view", "ap", *arguments, "-o", str(output)]) == 0
        grey = np.asarray(Image.open(output)).astype(float)
        shown[name] = grey[28:36, 28:36].mean() - grey[28:36, 12:16].mean()  # bone block minus soft tissue
    assert shown["default"] < -30 and shown["bone_white"] > 30


def test_fluoro_command_shoots_as_a_session_does(stored_phantom, tmp_path, capsys):
    """The exposure control chooses the kVp on its kV-mA curve, as on a shot in a session (9 cm of water: the
    curve's bottom), so a thick view is as noisy here as there; --kvp fixes it."""
    carm = carm_for_view(load_anatomy(stored_phantom), "ap", "L4", "left", None, None, 64)
    session_kvp = shot_technique(load_anatomy(stored_phantom), carm, "pulse", Technique()).kvp
    assert session_kvp == AEC_KVP_STEPS[0]
    for arguments, kvp in (([], session_kvp), (["--kvp", "95"], 95.0)):
        assert main(["fluoro", stored_phantom, "--pixels", "64", *arguments, "-o", str(tmp_path / "shot.png")]) == 0
        assert f"at {kvp:.0f} kVp" in capsys.readouterr().out.replace("\n", " ")
