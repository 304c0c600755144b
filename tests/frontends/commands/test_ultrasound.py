import numpy as np
import pytest
from PIL import Image

from anatomy_models.anatomy import Anatomy
from anatomy_models.store import save_anatomy
from anatomy_models.structures import LabelTable
from anatomy_models.volume import Volume
from frontends.cli import main


@pytest.fixture(scope="module")
def stored_phantom(spinesim_home):
    """Muscle under flat skin at y = 40 mm with a bone plate 25 mm deep, and the view landmarks."""
    table = LabelTable()
    table.add("muscle", "muscle")
    table.add("L4.lamina.left", "cortical_bone")
    labels = np.zeros((60, 60, 60), np.uint16)
    labels[:, :41, :] = 1
    labels[:, 12:16, :] = 2
    ct = np.where(labels > 0, 40, -1000).astype(np.int16)
    landmarks = {"L4-L5.interlaminar_window.center": [30.0, 20.0, 30.0], "L4.spinous_process.tip": [30.0, 35.0, 40.0],
                 "L5.spinous_process.tip": [30.0, 35.0, 20.0], "facet_joint.L4-L5.left.center": [40.0, 20.0, 30.0]}
    save_anatomy(Anatomy(Volume.from_spacing(ct, (1, 1, 1)), table, Volume.from_spacing(labels, (1, 1, 1)), landmarks),
                 "us-phantom")
    return "us-phantom"


def test_writes_an_annotated_png_of_the_view(stored_phantom, tmp_path, capsys):
    out = tmp_path / "view.png"
    assert main(["ultrasound", stored_phantom, "--view", "articular", "--probe", "linear", "--depth", "40",
                 "--size", "96x128", "-o", str(out)]) == 0
    assert "articular" in capsys.readouterr().out
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (96, 91, 3)                       # cut to the 38 mm x 40 mm field of view
    assert tuple(pixels[10, 10]) == (80, 170, 255)          # the orientation marker, top left
    grey = pixels[..., 0].astype(float)
    bone_row = int(round(25.5 / (40.0 / 96)))               # the plate's top, 25 mm under the skin
    assert grey[bone_row - 2:bone_row + 3, 15:75].mean(axis=1).max() > 2 * grey[bone_row + 8:, 15:75].mean()


@pytest.mark.parametrize("arguments, message", [
    (["--size", "big"], "--size"),
    (["--level", "L2-L3"], "no landmark"),
    (["--view", "articular", "--frequency", "12"], "frequency_mhz"),   # too high for a curvilinear probe
    (["--view", "paramedian-sagittal-oblique"], "no labelled L4-L5 disc"),  # nothing to aim through the window at
])
def test_user_errors_are_reported_in_one_line(stored_phantom, tmp_path, capsys, arguments, message):
    assert main(["ultrasound", stored_phantom, *arguments, "-o", str(tmp_path / "x.png")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_doppler_leaves_a_frame_without_vessels_grey(stored_phantom, tmp_path):
    plain, flow = tmp_path / "plain.png", tmp_path / "flow.png"
    common = [stored_phantom, "--view", "articular", "--probe", "linear", "--depth", "40", "--size", "96x128"]
    assert main(["ultrasound", *common, "-o", str(plain)]) == 0
    assert main(["ultrasound", *common, "--doppler", "-o", str(flow)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(flow)), np.asarray(Image.open(plain)))
