"""What the portal and its workstations share: the secret the portal adds to every request it forwards (a
workstation refuses any request without it: another local user reaching the workstation's port cannot), and
the bond that ends a workstation or the zygote when the portal dies.

Its own small module because both sides need it and the portal does not import the workstation (the zygote
imports it, once, to fork workstations from: :mod:`frontends.web.zygote`).
"""

from __future__ import annotations

import hmac
import signal
import sys

# The header that carries a workstation's secret on every request the portal forwards to it.
SECRET_HEADER = "X-Spinesim-Workstation"


def secrets_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one.

    Examples
    --------
    >>> secrets_match("abc", "abc"), secrets_match("abd", "abc"), secrets_match(None, "abc")
    (True, False, False)
    """
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
