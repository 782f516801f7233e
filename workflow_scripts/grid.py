"""Rule grid: every method's video of one prompt and seed side by side (mp4 and GIF)."""
from t2v_core.grids import write_prompt_grid
from t2v_core.prompts import sample_file
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params, w = snakemake.params, snakemake.wildcards
videos = [sample_file(folder, w.prompt_id, w.seed) for folder in snakemake.input.samples]
write_prompt_grid(dict(zip(params.labels, videos)), snakemake.output.mp4, snakemake.output.gif, params.fps)
