"""The hostile corpus in one command, with a tally: every class of bad input issue 23 names, made here (no
committed binaries), each run through the ``spinesim`` command as a user would, each outcome classified.

    python -m benchmarks.fuzz_corpus [--timeout 180]

Prints one row per input (the class, the input, the outcome, the first line the user saw) and the tally by
outcome; exits non-zero if any outcome is not one of "clear error" and "accepted". Outcomes:

- **clear error**: refused with ``error: ...`` naming the input (its file or the argument), no traceback;
- **accepted**: an input that is valid (a byte-order mark, big-endian DICOM, a detached NRRD header) read;
- **error not naming the input**, **internal error**, **traceback**, **hang** (past ``--timeout`` s),
  **silently accepted** (bad input read without a word): each a bug.

``tests/frontends/test_fuzz_corpus.py`` runs the same corpus in the suite and asserts the same.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"
GOOD = ("clear error", "accepted")


@dataclass(frozen=True)
class Hostile:
    """One input: its class, a short name, how to make it in a folder (returns the command's arguments and the
    text an error must name), and whether it is valid input that must be read."""

    kind: str
    name: str
    make: Callable[[Path], tuple[list[str], str]]
    valid: bool = False
    needs_patient: bool = False  # runs on the built-in patient (generated once, ~25 s): left out of the suite's run


# ------------------------------------------------------------------------------------------------ makers
def _nifti(folder: Path, name: str, array: np.ndarray, zooms=(0.7, 0.7, 2.0), shape=None, **header) -> Path:
    import nibabel as nib

    image = nib.Nifti1Image(array, np.diag([*zooms, 1.0]))
    image.set_sform(image.affine, code=1)
    for key, value in header.items():
        image.header[key] = value
    path = folder / name
    nib.save(image, str(path))
    if shape is not None:  # a header that declares a huge image over a tiny payload
        data = path.read_bytes()
        declared = nib.Nifti1Header.from_fileobj(io.BytesIO(data))
        declared.set_data_shape(shape)
        path.write_bytes(declared.binaryblock + data[348:])
    return path


def _info(path: Path) -> tuple[list[str], str]:
    return ["anatomy", "info", str(path)], path.name


def _import(path: Path) -> tuple[list[str], str]:
    """An image imported as a user would (``anatomy info`` reads headers only)."""
    return ["anatomy", "import", str(path), "-o", f"hostile-{path.parent.name}"], path.name


def _volume(name: str, array: np.ndarray, **options) -> Callable[[Path], tuple[list[str], str]]:
    return lambda folder: _import(_nifti(folder, name, array, **options))


def _corrupt_gzip(folder: Path) -> tuple[list[str], str]:
    noise = np.random.default_rng(1).integers(-1000, 2000, (32, 32, 32)).astype(np.int16)
    path = _nifti(folder, "ct.nii.gz", noise)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the gzip CRC-32 of the data
    path.write_bytes(bytes(data))
    return _import(path)


def _nrrd(text: str, payload: bytes = b"", name: str = "ct.nrrd") -> Callable[[Path], tuple[list[str], str]]:
    def make(folder: Path) -> tuple[list[str], str]:
        path = folder / name
        path.write_bytes(text.encode() + b"\n" + payload)
        return _import(path)
    return make


def _detached_nrrd(folder: Path) -> tuple[list[str], str]:
    (folder / "ct.raw").write_bytes(np.zeros((4, 3, 2), "<i2").tobytes())
    path = folder / "ct.nhdr"
    path.write_text("NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 2 3 4\n"
                    "space directions: (1,0,0) (0,1,0) (0,0,2)\nspace origin: (0,0,0)\nendian: little\n"
                    "encoding: raw\ndata file: ct.raw\n")
    return _import(path)


def _dicom(folder: Path, **options) -> Path:
    from tests.anatomy_models.dicom_series import axial_positions, stored_ramp, write_stack

    series = folder / "series"
    write_stack(series, stored_ramp(3), axial_positions(3), **options)
    return series


def _big_endian_dicom(folder: Path) -> tuple[list[str], str]:
    from pydicom.uid import ExplicitVRBigEndian

    return _import(_dicom(folder, transfer_syntax=ExplicitVRBigEndian))


def _truncated_dicom(folder: Path) -> tuple[list[str], str]:
    series = _dicom(folder)
    first = sorted(series.iterdir())[0]
    first.write_bytes(first.read_bytes()[:-100])
    return _import(series)


def _mesh(name: str, content: bytes) -> Callable[[Path], tuple[list[str], str]]:
    def make(folder: Path) -> tuple[list[str], str]:
        path = folder / name
        path.write_bytes(content)
        return _import(path)
    return make


def _scenario(edit: Callable[[str], str], name: str = "case.yaml") -> Callable[[Path], tuple[list[str], str]]:
    def make(folder: Path) -> tuple[list[str], str]:
        path = folder / name
        path.write_text(edit((LIBRARY / "facet-default.yaml").read_text()))
        return ["scenario", "validate", str(path)], path.name
    return make


def _laughs(text: str) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    return text.replace("objectives:", "\n".join(lines) + "\nobjectives:")


def _log(lines: list[str], prefix: bytes = b"") -> Callable[[Path], tuple[list[str], str]]:
    def make(folder: Path) -> tuple[list[str], str]:
        path = folder / "attempt.jsonl"
        path.write_bytes(prefix + "\n".join(lines).encode() + b"\n")
        return ["score", str(path), "--scenario", str(LIBRARY / "facet-default.yaml")], path.name
    return make


HEADER = json.dumps({"spinesim_log": 1, "scenario": "facet-default", "seed": 0})


def _stored(files: dict[str, str]) -> Callable[[Path], tuple[list[str], str]]:
    def make(folder: Path) -> tuple[list[str], str]:
        stored = folder / "stored"
        stored.mkdir()
        for name, text in files.items():
            (stored / name).write_text(text)
        return _info(stored)
    return make


def _argument(arguments: list[str], named: str) -> Callable[[Path], tuple[list[str], str]]:
    return lambda folder: ([part.replace("{folder}", str(folder)) for part in arguments], named)


MARKUP = "[red]x[/red][/]"
CORPUS = [
    # images: sizes, numbers, damaged containers
    Hostile("image header", "NIfTI declaring 30000^3 voxels over 16 bytes",
            _volume("huge.nii", np.zeros((2, 2, 2), np.int16), shape=(30000, 30000, 30000))),
    Hostile("image numbers", "NIfTI with a NaN voxel", _volume("nan.nii", np.array([[[np.nan, 0.0]]], np.float32))),
    Hostile("image numbers", "NIfTI with an infinite slope",
            _volume("slope.nii", np.full((2, 2, 2), 3, np.int16), scl_slope=np.inf, scl_inter=0)),
    Hostile("image numbers", "NIfTI with 0.00001 mm voxels", _volume("flat.nii", np.zeros((2, 2, 2), np.int16),
                                                                    zooms=(0.7, 1e-5, 2.0))),
    Hostile("damaged container", "gzip NIfTI with a broken checksum", _corrupt_gzip),
    Hostile("image header", "NRRD declaring 50000^3 voxels over 8 bytes",
            _nrrd("NRRD0004\ntype: short\ndimension: 3\nsizes: 50000 50000 50000\nencoding: raw\nendian: little\n",
                  bytes(8))),
    Hostile("damaged container", "gzip NRRD cut short",
            _nrrd("NRRD0004\ntype: short\ndimension: 3\nsizes: 20 20 20\nencoding: gzip\n",
                  gzip.compress(bytes(16000))[:-40])),
    Hostile("valid input", "detached NRRD header (.nhdr)", _detached_nrrd, valid=True),
    Hostile("valid input", "big-endian DICOM series", _big_endian_dicom, valid=True),
    Hostile("damaged container", "DICOM series with a truncated slice", _truncated_dicom),
    Hostile("mesh", "empty STL", _mesh("empty.stl", b"")),
    Hostile("mesh", "binary STL announcing 1,000,000 triangles, holding one",
            _mesh("short.stl", bytes(80) + np.uint32(1_000_000).tobytes() + bytes(50))),
    Hostile("mesh", "OBJ with NaN vertices", _mesh("nan.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n")),
    Hostile("markup in text", "mesh file named [red]x[bold]", _mesh("scan[red]x[bold].stl", b"solid x\nendsolid x\n")),
    # stored-anatomy folders
    Hostile("stored anatomy", "manifest without its CT",
            _stored({"anatomy.json": json.dumps({"format": "spinesim-anatomy", "version": 1})})),
    Hostile("stored anatomy", "manifest of the wrong type", _stored({"anatomy.json": "[1, 2, 3]"})),
    # scenarios
    Hostile("resource bomb", "scenario with a billion laughs", _scenario(_laughs)),
    Hostile("resource bomb", "scenario nested 1000 deep",
            _scenario(lambda text: text.replace("objectives:", "deep: " + "[" * 1000 + "]" * 1000 + "\nobjectives:"))),
    Hostile("scenario", "scenario with a key given twice", _scenario(lambda text: text + "\nid: facet-again\n")),
    Hostile("markup in text", f"scenario value {MARKUP}",
            _scenario(lambda text: text.replace("side: left}", f"side: '{MARKUP}'}}", 1))),
    Hostile("scenario", "scenario with a stored anatomy ../..",
            _scenario(lambda text: text.replace("anatomy: {builtin: default}", "anatomy: {stored: ../../etc}"))),
    Hostile("resource bomb", "scenario with a 1 MB value",
            _scenario(lambda text: text.replace("side: left}", "side: " + "x" * 1_000_000 + "}", 1))),
    # action logs
    Hostile("valid input", "action log with a UTF-8 byte-order mark", _log([HEADER], prefix="\ufeff".encode()),
            valid=True, needs_patient=True),
    Hostile("resource bomb", "action log with a 10 MB line", _log([HEADER, json.dumps({"type": "x" * 10_000_000})])),
    Hostile("log numbers", "action log with NaN time", _log([HEADER, '{"type": "fluoro_shot", "t": NaN}'])),
    Hostile("log numbers", "action log with a boolean depth",
            _log([HEADER, '{"type": "advance", "t": 1.0, "mm": true}'])),
    Hostile("log numbers", "action log header with a seed of 2**80",
            _log([json.dumps({"spinesim_log": 1, "scenario": "facet-default", "seed": 2 ** 80})])),
    Hostile("resource bomb", "action log nested 10000 deep", _log([HEADER, "[" * 10000 + "]" * 10000])),
    Hostile("markup in text", f"action type {MARKUP}", _log([HEADER, json.dumps({"type": MARKUP, "t": 1.0})])),
    # the command line and output paths
    Hostile("arguments", "fluoro --tilt nan", _argument(["fluoro", "--tilt", "nan", "-o", "{folder}/x.png"], "--tilt")),
    Hostile("arguments", "anatomy generate --spacing 0.0001",
            _argument(["anatomy", "generate", "tiny", "--spacing", "0.0001"], "spacing")),
    Hostile("output path", "fluoro -o into a missing place under a file",
            _argument(["fluoro", "-o", "{folder}/ct.png/x.png"], "x.png")),
]

# ------------------------------------------------------------------------------------------------ running
class _Hang(BaseException):
    """Past the timeout (a BaseException, so the command's own handler of unexpected errors lets it through)."""


def _alarm(signum, frame):
    raise _Hang()


def run_one(hostile: Hostile, folder: Path, timeout_s: int) -> tuple[str, str]:
    """(outcome, the first line the user saw) of one input, run through ``spinesim`` in this process."""
    from frontends.cli import main

    folder.mkdir(parents=True)
    arguments, named = hostile.make(folder)
    if arguments[:2] == ["fluoro", "-o"] or arguments[0] == "fluoro" and "nan" not in arguments:
        (folder / "ct.png").write_text("a file, not a folder")
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(arguments)
    except _Hang:
        return "hang", f"still running after {timeout_s} s"
    except BaseException as error:  # noqa: BLE001 - whatever escapes the command is the finding
        return "traceback", f"{type(error).__name__}: {error}"[:200]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    said = (err.getvalue() + out.getvalue()).strip()
    first = next((line for line in said.splitlines() if line.strip()), "")
    if "Traceback" in said:
        return "traceback", first[:200]
    if "internal error" in said:
        return "internal error", first[:200]
    if code == 0:
        return ("accepted" if hostile.valid else "silently accepted"), first[:200]
    if hostile.valid:
        return "wrongly refused", first[:200]
    flat = " ".join(said.split())
    return ("clear error" if named in flat else "error not naming the input"), first[:200]


def run_corpus(folder: Path, timeout_s: int = 180, with_patient: bool = True) -> list[tuple[Hostile, str, str]]:
    return [(hostile, *run_one(hostile, folder / f"{number:02d}", timeout_s)) for number, hostile in enumerate(CORPUS)
            if with_patient or not hostile.needs_patient]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_corpus", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=180, help="seconds before an input counts as a hang")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        results = run_corpus(Path(folder), options.timeout)
    for hostile, outcome, said in results:
        print(f"{hostile.kind:18} | {hostile.name:58} | {outcome:26} | {said}")
    tally = Counter(outcome for _, outcome, _ in results)
    print("\n" + ", ".join(f"{outcome}: {count}" for outcome, count in tally.most_common()) + f" ({len(results)} inputs)")
    return 0 if set(tally) <= set(GOOD) else 1


if __name__ == "__main__":
    sys.exit(main())
