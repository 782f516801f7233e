"""Rule prepare_first_frame: the first-frame image of one prompt."""
from t2v_core.data.sources import prepare_first_frame
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
prepare_first_frame(params.data, params.motion, params.prompt, snakemake.output[0], *params.size,
                    sha256=params.sha256)
