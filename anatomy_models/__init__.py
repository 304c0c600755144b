"""Patient anatomy for spinesim: volumes, label maps, landmarks, tissue physics and their readers.

The world frame everywhere is DICOM patient LPS in millimetres (+x Left, +y Posterior, +z Superior).

The names below are imported on first use (PEP 562 module ``__getattr__``), so that importing a
light submodule (``anatomy_models.errors``: a web front end that only reports errors) does not load
numpy, scipy and pyvista.
"""

from importlib import import_module

_EXPORTS = {"Anatomy": "anatomy_models.anatomy", "LabelTable": "anatomy_models.structures",
            "SpinesimError": "anatomy_models.errors", "TISSUES": "anatomy_models.tissues",
            "Tissue": "anatomy_models.tissues", "Volume": "anatomy_models.volume"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anatomy_models' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
