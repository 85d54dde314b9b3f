"""The oversight body's agents: the transparency-log witness (:mod:`oversight.witness`)."""
