"""Rule aggregate: the comparison table (CSV, Markdown, LaTeX), per-prompt and per-motion tables, and the plots."""
from t2v_core.aggregate import aggregate
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
aggregate(list(snakemake.input), params.methods, dict(snakemake.output.items()),
          params.bootstrap_samples, params.seed, poster_models=params.poster_models,
          readings=params.readings)
