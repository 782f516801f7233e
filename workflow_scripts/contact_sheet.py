"""Rule contact_sheet: one prompt's methods as rows, evenly picked frames as columns (PNG)."""
from t2v_core.grids import write_contact_sheet
from t2v_core.prompts import sample_file
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
videos = [sample_file(folder, snakemake.wildcards.prompt_id, params.seed) for folder in snakemake.input.samples]
write_contact_sheet(dict(zip(params.labels, videos)), snakemake.output[0], params.frames)
