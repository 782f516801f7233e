"""Rule evaluate: the metrics of the config's evaluators on the videos of one (method, motion)."""
from t2v_core.metrics.evaluate import evaluate_videos
from t2v_core.metrics.registry import get_evaluator
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
w, params = snakemake.wildcards, snakemake.params
models = {model: snakemake.input[model] for name in params.evaluators for model in get_evaluator(name).models}
evaluate_videos(
    models, snakemake.input.videos, params.prompts, params.seeds, {"method": w.method, "motion": w.motion},
    snakemake.output[0], evaluators=params.evaluators, batch_size=params.batch_size, device=default_device(),
)
