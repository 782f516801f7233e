"""Rule sample: every seed of every prompt of one (method, motion), by the method's registered sampler."""
from t2v_core.jobs.sample import sample_motion
from t2v_core.methods import get_method
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
method = get_method(snakemake.wildcards.method)
sample_motion(
    method, {model: snakemake.input[model] for model in method.models}, params.prompts, params.seeds, params.video,
    params.sampling, snakemake.output[0], adapter_dir=snakemake.input.get("adapter"),
    first_frames=dict(zip(params.prompts, snakemake.input.get("first_frames", []))), device=default_device(),
    performance=params.performance,
)
