"""Rule disk_usage: the size of every stage's outputs of the run."""
from t2v_core.disk_usage import disk_usage
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
disk_usage(snakemake.params.stages, snakemake.output.csv, snakemake.output.md)
