"""Rule prepare_models: one model folder from the config's model source (download, tiny, or a plugin's)."""
from t2v_core.models.prepare import prepare_model
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
# the experiment is read from the config, not a param: renaming an experiment re-prepares nothing
prepare_model(snakemake.wildcards.model, snakemake.output[0], snakemake.params.models, snakemake.config["experiment"])
