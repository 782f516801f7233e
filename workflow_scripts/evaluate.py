"""Rule evaluate: the metrics of the config's evaluators on every video of one method."""
from t2v_core.metrics.evaluate import evaluate_videos
from t2v_core.metrics.registry import get_evaluator
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
models = {model: snakemake.input[model] for name in params.evaluators for model in get_evaluator(name).models}
samples = {motion: (folder, params.prompts[motion]) for motion, folder in zip(params.prompts, snakemake.input.samples)}
evaluate_videos(
    models, samples, params.seeds, snakemake.wildcards.method, snakemake.output[0], evaluators=params.evaluators,
    batch_size=params.batch_size, device=default_device(), metrics_on=params.metrics_on, fps=params.fps,
)
