"""The fine-tuning job: one fine-tuned model (a registered :class:`~t2v_core.methods.base.Training`)
on one motion's clips: their latents, the loop, checkpoints and resuming, the saved model."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Mapping

import torch

from ..methods.base import Training
from ..training import TrainingError
from ..training.checkpoints import Checkpoints, run_fingerprint
from ..training.data import TrainingSet, prepare_training_set
from ..training.loop import apply_gradient_checkpointing, train_denoiser
from ..training.trainable import Trainable

log = logging.getLogger(__name__)

#: ``finetune.save_dtype``: the precision a fine-tuned model is stored in (loaded as float32).
SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def train(training: Training, base_components: dict, model_dirs: Mapping[str, Path], data: TrainingSet,
          video: dict, finetune: dict, checkpoints: Checkpoints, device="cpu", stop_after: int | None = None
          ) -> tuple[Trainable, list[float], bool]:
    """Build ``training``'s trainable and run the loop: (the :class:`Trainable`, per-step losses,
    whether all steps are done)."""
    trainable = training.build(base_components, model_dirs, finetune, device)
    settings = training.loop_settings(finetune)
    on_out_of_memory = None
    if trainable.enable_gradient_checkpointing is not None:
        on_out_of_memory = apply_gradient_checkpointing(settings["gradient_checkpointing"], device,
                                                        trainable.enable_gradient_checkpointing)
    losses, complete = train_denoiser(trainable, data, base_components["scheduler"], settings, video["num_frames"],
                                      checkpoints, device=device, stop_after=stop_after,
                                      desc=f"finetune {training.name}", on_out_of_memory=on_out_of_memory)
    trainable.module.eval()
    return trainable, losses, complete


def finetune_motion(training: Training, base_components: dict, clip_paths: list, prompt: str | list[str], out_dir,
                    checkpoint_root, video: dict, finetune: dict, mask_paths: list | None = None,
                    model_dirs: Mapping[str, Path] | None = None, device="cpu", stop_after: int | None = None,
                    keep_checkpoints: bool = False) -> list[float]:
    """Fine-tune ``training`` on one motion's clips; save the fine-tuned model to ``out_dir`` (in
    ``finetune["save_dtype"]``), then remove the run's checkpoints unless ``keep_checkpoints``.

    ``finetune`` holds the common settings and the training's block ``finetune[training.name]``;
    ``prompt`` is the caption of every clip or one caption per clip; ``model_dirs`` the
    prepared folders of ``training.models`` besides the base. Returns the per-step losses.
    ``stop_after`` ends the run early (after that many steps in total) without writing
    ``out_dir``, as a kill would; used to test resuming.
    """
    if training.needs_masks and mask_paths is None:
        raise TrainingError(f"{training.name!r} needs the foreground masks of the clips")
    masks = mask_paths if training.needs_masks else None
    data = prepare_training_set(base_components, clip_paths, prompt, video, masks, device)
    torch.manual_seed(finetune["seed"])
    fingerprint = run_fingerprint([*clip_paths, *(masks or [])], data.prompts, video, finetune, training.name)
    trained, losses, complete = train(training, base_components, dict(model_dirs or {}), data, video, finetune,
                                      Checkpoints(checkpoint_root, fingerprint), device, stop_after)
    if complete:
        training.save(trained.module, out_dir, SAVE_DTYPES[finetune["save_dtype"]], {
            "method": training.name, "prompt": prompt, "steps": training.loop_settings(finetune)["steps"],
            "parameter_groups": {group.name: {"learning_rate": group.learning_rate, "tensors": len(group.parameters)}
                                 for group in trained.groups},
            "save_dtype": finetune["save_dtype"], "clips": [str(p) for p in clip_paths],
            "final_loss": losses[-1] if losses else math.nan})
        if not keep_checkpoints:
            # the model is written: its checkpoints (trained parameters and AdamW's two
            # moments, ~3x the model) are only needed to continue training
            shutil.rmtree(checkpoint_root, ignore_errors=True)
    return losses
