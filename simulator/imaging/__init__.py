"""Imaging: the C-arm's geometry (:mod:`.carm`), digitally reconstructed radiographs (:mod:`.drr`), the
fluoroscopy chain (:mod:`.fluoro`) and its dose (:mod:`.dose`), the ultrasound probe (:mod:`.probe`)
and B-mode image (:mod:`.ultrasound`)."""
