"""Patient anatomy for spinesim: volumes, label maps, landmarks, tissue physics and their readers.

The world frame everywhere is DICOM patient LPS in millimetres (+x Left, +y Posterior, +z Superior).

The names below are imported on first use (PEP 562 module ``__getattr__``), so that importing a
light submodule (``anatomy_models.errors``: a web front end that only reports errors) does not load
numpy, scipy and pyvista.
"""

from anatomy_models.lazy import lazy_exports

_EXPORTS = {"Anatomy": "anatomy_models.anatomy", "LabelTable": "anatomy_models.structures",
            "SpinesimError": "anatomy_models.errors", "TISSUES": "anatomy_models.tissues",
            "Tissue": "anatomy_models.tissues", "Volume": "anatomy_models.volume"}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("anatomy_models", _EXPORTS, globals())
