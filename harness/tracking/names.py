"""The recorded names, as the trainer and the rest of ``harness`` import them: ``analysis.record_names`` is
their one home (``analysis`` reads runs with the same constants and never imports ``harness``)."""

from analysis.record_names import *  # noqa: F403
