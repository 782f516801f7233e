"""Rule extract_masks: SAM foreground masks of one motion's clips."""
from pathlib import Path

from t2v_core.masks import extract_motion_masks
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
clips = sorted(p for p in Path(snakemake.input.clips).iterdir() if not p.name.startswith("."))
extract_motion_masks(snakemake.input.sam, clips, snakemake.output[0], snakemake.params.masks,
                     subject=snakemake.params.subject, clip_dir=snakemake.input.get("clip"),
                     device=default_device())
