"""Rule sample: every seed of one (method, motion, prompt), by the method's registered sampler."""
from t2v_core.methods import get_method
from t2v_core.runtime import default_device, setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
method = get_method(snakemake.wildcards.method)
outputs = {seed: {"mp4": mp4, "gif": gif}
           for seed, mp4, gif in zip(params.seeds, snakemake.output.mp4, snakemake.output.gif)}
method.sample_videos(
    {model: snakemake.input[model] for model in method.models}, params.prompt, params.seeds, params.video,
    params.sampling, outputs, adapter_dir=snakemake.input.get("adapter"),
    first_frame_path=snakemake.input.get("first_frame"), device=default_device(),
)
