"""Patient anatomy for spinesim: volumes, label maps, landmarks, tissue physics and their readers.

The world frame everywhere is DICOM patient LPS in millimetres (+x Left, +y Posterior, +z Superior).
"""

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.structures import LabelTable
from anatomy_models.tissues import TISSUES, Tissue
from anatomy_models.volume import Volume

__all__ = ["Anatomy", "LabelTable", "SpinesimError", "TISSUES", "Tissue", "Volume"]
