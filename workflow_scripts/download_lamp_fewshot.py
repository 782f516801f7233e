"""Rule download_lamp_fewshot: LAMP's few-shot clips from their Google Drive folder."""
from t2v_core.data.sources import download_lamp_fewshot
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
download_lamp_fewshot(snakemake.params.folder_id, snakemake.output[0])
