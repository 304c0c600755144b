"""How hard the property-based fuzz tests of hostile input try.

In the suite each runs its own bounded number of examples; ``python -m benchmarks.fuzz`` runs the same
tests with ``SPINESIM_FUZZ_SCALE`` (default there 20) times as many, the longer campaign.
"""

from __future__ import annotations

import os

FUZZ_SCALE = max(1, int(os.environ.get("SPINESIM_FUZZ_SCALE", "1")))


def examples(in_suite: int) -> int:
    """The number of examples a fuzz test runs: ``in_suite`` times :data:`FUZZ_SCALE`."""
    return in_suite * FUZZ_SCALE
