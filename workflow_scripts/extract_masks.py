"""Rule extract_masks: SAM foreground masks of one motion's clips."""
from t2v_core.data.validation import list_clips
from t2v_core.masks import extract_motion_masks
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
clips = list_clips(snakemake.input.clips)
extract_motion_masks(snakemake.input.sam, clips, snakemake.output[0], snakemake.params.masks,
                     subject=snakemake.params.subject, clip_dir=snakemake.input.get("clip"),
                     device=default_device())
