"""The needle in the patient: its pose and moves (:mod:`.shaft`), its trace through the labelled tissues
(:mod:`.trace`), what a loss-of-resistance syringe feels (:mod:`.resistance`) and where injected
contrast goes (:mod:`.contrast`)."""
