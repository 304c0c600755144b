"""The built-in patient: a parametric lumbar spine (T12 with its 12th ribs to the sacrum) with its soft tissues.

``generate_spine(SpineParameters(...)) -> Anatomy``; see :mod:`anatomy_models.spine.generator`.
"""

from anatomy_models.spine.generator import generate_spine
from anatomy_models.spine.parameters import GENERATOR_VERSION, SpineParameters

__all__ = ["GENERATOR_VERSION", "SpineParameters", "generate_spine"]
