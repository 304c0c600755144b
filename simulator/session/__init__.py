"""An attempt: its actions (:mod:`.actions`), the session that folds them into states and events
(:mod:`.fold`), the one replay of a log (:mod:`.replay`), the history scoring reads (:mod:`.history`),
and the fluoroscopy shot and ultrasound frame of a state (:mod:`.shots`, :mod:`.scans`)."""
