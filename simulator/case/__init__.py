"""The case on this patient: the scenario's target and acceptance zone (:mod:`.targets`), the expert's
path to it (:mod:`.planner`), and the controls that turn what the trainee does on an image into
needle and probe poses (:mod:`.controls`)."""
