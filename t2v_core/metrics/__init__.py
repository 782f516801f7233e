"""Metrics of the study: the metric table (:mod:`.registry`), the CLIP metrics (:mod:`.clip`)
and the evaluation of one prompt's videos (:mod:`.evaluate`)."""
