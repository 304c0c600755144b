"""Imaging: the C-arm's geometry (:mod:`.carm`), digitally reconstructed radiographs (:mod:`.drr`), the
fluoroscopy chain (:mod:`.fluoro`) and its dose (:mod:`.dose`), the ultrasound probe (:mod:`.probe`)
and B-mode image (:mod:`.ultrasound`)."""

import os

# The compiled projectors and filters run their loops on numba's OpenMP threads (GNU libgomp). By default
# a thread that finishes its share spins for a while before it sleeps; on a workstation that shares two
# cores with the portal, the other trainees' workstations and the stream's encoder, that spinning took
# the cores the others needed: 16 ms of CPU a frame for a 2 ms projection, a new pose's frame 240 ms of
# CPU instead of 195 (benchmarks/bench_cine.py). Passive threads sleep at once. libgomp reads this when
# numba first starts its threads, which is in the first compiled parallel loop, all of which are in
# this package; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
