"""Rule prepare_clips: the validated training clips of one motion."""
from t2v_core.data.sources import prepare_motion_clips
from t2v_core.runtime import setup_job_logging

setup_job_logging(snakemake.log[0])
params = snakemake.params
source_dir = snakemake.input.source if snakemake.input.source else params.local_dir
prepare_motion_clips(params.data, params.motion, snakemake.output[0], params.num_frames,
                     source_dir=source_dir, fps=params.fps, expected_sums=params.expected_sums)
