"""Rule evaluate: CLIP metrics (and the toy world's motion metric) of the videos of one (method, motion, prompt)."""
from t2v_core.metrics import evaluate_videos
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
w, params = snakemake.wildcards, snakemake.params
evaluate_videos(
    snakemake.input.clip, dict(zip(params.seeds, snakemake.input.videos)), params.prompt,
    {"method": w.method, "motion": w.motion, "prompt_id": w.prompt_id}, snakemake.output[0],
    batch_size=params.batch_size, device=default_device(), motion_metric=params.motion_metric,
)
