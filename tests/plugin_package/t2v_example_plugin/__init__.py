"""An outside package's additions to t2v_core, registered when t2v_core loads its plugins (the
entry point ``example`` of the group ``t2v_core.plugins``): importing the modules registers
what they declare."""

from . import colour_probe, still, two_rates  # noqa: F401  (each module registers its own)
