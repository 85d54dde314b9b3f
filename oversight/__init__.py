"""The oversight body's agents: the transparency-log witness (:mod:`oversight.witness`) and the
monitor that checks the registry's process (:mod:`oversight.monitor`)."""
