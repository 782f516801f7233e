"""Rule grid: every method's video of one prompt and seed side by side (mp4 and GIF)."""
from t2v_core.grids import write_prompt_grid
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
write_prompt_grid(dict(zip(params.labels, snakemake.input.videos)), snakemake.output.mp4,
                  snakemake.output.gif, params.fps)
