"""Imported last by the zygote (:mod:`frontends.web.zygote`), once everything a workstation needs is imported.

- The zygote dies with the portal (``PR_SET_PDEATHSIG``, :func:`frontends.web.portal_link.die_with_parent`):
  multiprocessing's fork server exits when the portal's end of its "alive" pipe closes, but every child it
  forks is given a copy of that end, so while any workstation runs it would stay, and its workstations
  (which die with it) too: a killed portal left them all running (seen in
  tests/frontends/web/test_browser.py's killed server).
- Every object imported so far moves into the garbage collector's permanent generation (``gc.freeze``), so
  a workstation's collections never write to them and their pages stay shared with the zygote instead of
  being copied into each workstation (Python's recipe for processes that fork without exec:
  https://docs.python.org/3/library/gc.html#gc.freeze; measured by ``python -m benchmarks memory``).
"""

import gc

from frontends.web.portal_link import die_with_parent

die_with_parent()
gc.collect()
gc.freeze()
