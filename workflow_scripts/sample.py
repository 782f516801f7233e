"""Rule sample: every seed of one (method, motion, prompt)."""
from t2v_core.runtime import default_device, setup_job_logging
from t2v_core.sampling import sample_method_videos

setup_job_logging(snakemake.log[0])
params = snakemake.params
outputs = {seed: {"mp4": mp4, "gif": gif}
           for seed, mp4, gif in zip(params.seeds, snakemake.output.mp4, snakemake.output.gif)}
sample_method_videos(
    snakemake.wildcards.method, snakemake.input.base, params.prompt, params.seeds, params.video,
    params.sampling, outputs, adapter_dir=snakemake.input.get("adapter"),
    first_frame_path=snakemake.input.get("first_frame"), device=default_device(),
)
