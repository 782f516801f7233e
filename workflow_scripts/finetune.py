"""Rule finetune: one (fine-tuned model, motion), by the fine-tuning's registered declaration."""
from pathlib import Path

from t2v_core.data.sources import clip_captions
from t2v_core.data.validation import list_clips
from t2v_core.jobs.finetune import finetune_motion
from t2v_core.methods import get_training
from t2v_core.models.loading import load_base_components
from t2v_core.runtime import default_device, setup_job_logging
from t2v_core.training.loop import write_loss_curve

setup_job_logging(snakemake.log[0])
device = default_device()
params = snakemake.params
clips = list_clips(snakemake.input.clips)
masks = None
if "masks" in snakemake.input.keys():
    masks = [Path(snakemake.input.masks) / f"{clip.stem}.npz" for clip in clips]
captions = clip_captions(snakemake.input.clips, clips) or params.prompt
training = get_training(snakemake.wildcards.trained)
losses = finetune_motion(
    training, load_base_components(snakemake.input.base, device=device), clips, captions,
    snakemake.output.adapter, params.checkpoints, params.video, params.finetune,
    mask_paths=masks, model_dirs={model: snakemake.input[model] for model in training.models},
    device=device,
    # from the config, not a param: switching it must not re-run the fine-tuning
    keep_checkpoints=snakemake.config["finetune"]["keep_checkpoints"],
)
write_loss_curve(losses, snakemake.output.loss_csv, snakemake.output.loss_png)
