"""Metrics of the study: the metric table (:mod:`.registry`), the study's metrics declared in it
(:mod:`.declared`: registered whenever this package is imported, before any lookup), the
formulas (:mod:`.clip`, :mod:`.vbench`, :mod:`.flow`) and the evaluate job (:mod:`.evaluate`)."""

from . import declared  # noqa: F401  (registers the study's metrics)
