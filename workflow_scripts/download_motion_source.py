"""Rule download_motion_source: one motion's clips from its own URL or Google Drive id."""
from t2v_core.data.sources import download_motion_source
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
download_motion_source(snakemake.params.source, snakemake.output[0])
