"""The few-shot fine-tuning loop: the trainable part of a video denoiser on one motion's clips.

First-frame conditioned as LAMP (:func:`train_adapter`): the first frame's latent is given
clean and gets no loss; the MSE of the predicted noise is taken on frames 2..F only, optionally
weighted per latent pixel by a weighting that the method supplies (Ours: by the SAM foreground
masks). Or every frame noised and scored, as AnimateDiff trains (MotionLoRA). No method is
named here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_dir, atomic_path
from . import TrainingError
from .checkpoints import Checkpoints
from .data import TrainingSet
from .trainable import Trainable

log = logging.getLogger(__name__)

def masked_diffusion_loss(pred, target, weights=None, first_frame_given: bool = True, normalised: bool = False):
    """Mean squared error of (B, C, F, h, w) tensors on frames 2..F (all frames when the first
    is not given); optional per-pixel weights (B, 1, F, h, w). With all weights 1 it equals the
    unweighted loss. ``normalised``: divided by the mean weight (the weighted mean of the
    errors), so that the weights shift the loss between pixels without scaling it; a window
    whose weights are all 0 gives 0."""
    start = 1 if first_frame_given else 0
    error = (pred[:, :, start:].float() - target[:, :, start:].float()) ** 2
    if weights is None:
        return error.mean()
    weights = weights[:, :, start:].float()
    loss = (error * weights).mean()
    return loss / weights.mean().clamp_min(1e-12) if normalised else loss


def first_frame_conditioned_input(scheduler, x0, noise, timestep):
    """The UNet's training input: every frame noised to ``timestep`` but the first, which is
    given clean (same timestep for all frames, as LAMP's reference)."""
    noisy = scheduler.add_noise(x0, noise, timestep)
    noisy[:, :, 0] = x0[:, :, 0]
    return noisy


def autocast_settings(mixed_precision: str, device, bf16_supported: bool | None = None
                      ) -> tuple[str, torch.dtype | None, bool]:
    """(device type, autocast dtype, enabled): bf16 autocast runs on CPUs too; fp16 only where
    it is fast (CUDA), fp32 elsewhere. ``auto``: bf16 on GPUs that have it, fp16 (with loss
    scaling) on other GPUs, fp32 on CPUs (where bf16 autocast is slower than fp32)."""
    device_type = torch.device(device).type
    if mixed_precision == "auto":
        if device_type != "cuda":
            mixed_precision = "no"
        else:
            supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
            mixed_precision = "bf16" if supported else "fp16"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision)
    enabled = dtype == torch.bfloat16 or (dtype is not None and device_type == "cuda")
    return device_type, dtype, enabled


def log_capped_strides(clip_frames: dict, window: int, stride: int) -> None:
    """Say which clips (path -> frames) are shorter than ``window`` frames every ``stride``-th
    span: their windows spread over the whole clip instead."""
    wanted = (window - 1) * stride + 1
    for path, frames in clip_frames.items():
        if window_span(frames, window, stride) < wanted:
            log.info("%s: %d frames, fewer than the %d that %d frames every %d-th span: its windows of %d frames "
                     "spread evenly over the whole clip (AnimateDiff's stride capped by the clip)",
                     path, frames, wanted, window, stride, window)


def window_span(clip_frames: int, window: int, stride: int) -> int:
    """How many of a clip's frames a training window of ``window`` frames every ``stride``-th
    spans: (window - 1) x stride + 1, capped by the clip's length (AnimateDiff's clip_length)."""
    return min(clip_frames, (window - 1) * stride + 1)


def _window_frames(clip_frames: int, window: int, stride: int, rng):
    """A random window's frames: a slice of consecutive frames for stride 1, else the indices
    AnimateDiff's dataset takes (``window`` evenly spaced over a span at a random start)."""
    span = window_span(clip_frames, window, stride)
    offset = int(rng.integers(clip_frames - span + 1))
    if span == window:
        return slice(offset, offset + window)
    return torch.from_numpy(np.linspace(offset, offset + span - 1, window, dtype=np.int64))


def _training_batch(data: TrainingSet, rng, settings: dict, window: int, weightings, device):
    """``settings["batch_size"]`` random windows of random clips (every ``frame_stride``-th frame,
    flipped at random when ``random_flip``, the caption left empty with a probability of
    ``empty_caption_ratio``): latents drawn from the posterior, caption embeddings, and for each
    of ``weightings`` (loss, noise; None = not used) its per-pixel weights from the masks."""
    x0s, weights, texts = [], [[] for _ in weightings], []
    stride, empty_ratio = settings.get("frame_stride", 1), settings.get("empty_caption_ratio", 0.0)
    for _ in range(settings["batch_size"]):
        index = int(rng.integers(len(data.latents)))
        clip = data.latents[index]
        frames = _window_frames(clip.shape[2], window, stride, rng)
        flip = bool(settings["random_flip"] and rng.random() < 0.5)
        mean, std = clip[:, :, frames].to(device)
        x0 = mean + std * torch.randn_like(std)
        x0s.append(x0.flip(-1) if flip else x0)
        for weighting, chosen in zip(weightings, weights):
            if weighting is not None:
                w = weighting(data.masks[index][:, frames]).to(device)
                chosen.append(w.flip(-1) if flip else w)
        # AnimateDiff's cfg_random_null_text_ratio: the caption "" (what guidance's negative is)
        empty = bool(empty_ratio and rng.random() <= empty_ratio)
        texts.append(data.empty_text if empty else data.texts[index])
    stacked = [torch.stack(w) if w else None for w in weights]
    # One window keeps its latents' memory layout, which torch.randn_like follows: the noise
    # of a one-clip batch is drawn exactly as before batches existed (LAMP's numbers unchanged).
    x0 = x0s[0][None] if len(x0s) == 1 else torch.stack(x0s)
    return x0, stacked, torch.stack(texts).to(device), index


def train_denoiser(trainable: Trainable, data: TrainingSet, scheduler, settings: dict, num_frames: int,
                   checkpoints: Checkpoints, device="cpu", stop_after: int | None = None, desc: str = "finetune",
                   on_out_of_memory: Callable[[], None] | None = None) -> tuple[list[float], bool]:
    """Train ``trainable``'s parameter groups through its denoiser, on windows of ``num_frames``
    frames of ``data`` for ``settings["steps"]`` steps in all, resuming from ``checkpoints``;
    (per-step losses, whether all steps are done). ``scheduler``: the base model's noise
    schedule, used unless ``trainable.scheduler`` is set.

    ``settings``: steps, batch_size, random_flip, mixed_precision, seed, checkpoint_every, and
    optionally frame_stride (1) and empty_caption_ratio (0) (the learning rates are the
    groups'). ``stop_after`` ends the run early (after that many steps in total), as a kill
    would; used to test resuming. ``on_out_of_memory``: called when the first step runs out of
    GPU memory (it turns gradient checkpointing on, see :func:`apply_gradient_checkpointing`),
    and the step is run again on the same batch; without it the error is raised.
    """
    params = trainable.parameters()
    scheduler = trainable.scheduler or scheduler
    weighting, noise_weighting = trainable.loss_weighting, trainable.noise_weighting
    first_frame_given = trainable.first_frame_given
    # LAMP's and AnimateDiff's optimiser: AdamW, weight decay 1e-2, constant learning rates,
    # gradients clipped at 1.
    optimizer = torch.optim.AdamW([{"params": list(g.parameters.values()), "lr": g.learning_rate}
                                   for g in trainable.groups], weight_decay=1e-2)
    for group in trainable.groups:
        log.info("%s: parameter group %r, %d tensors (%d values), learning rate %g", desc, group.name,
                 len(group.parameters), sum(p.numel() for p in group.parameters.values()), group.learning_rate)
    rng = np.random.default_rng(settings["seed"])
    start, losses = checkpoints.resume(params, optimizer, rng)
    device_type, autocast_dtype, use_autocast = autocast_settings(settings["mixed_precision"], device)
    # fp16 gradients of fp32 parameters need loss scaling; bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device_type, enabled=use_autocast and autocast_dtype == torch.float16)
    total = settings["steps"]
    log_capped_strides({path: clip.shape[2] for path, clip in zip(data.clip_paths, data.latents)}, num_frames,
                       settings.get("frame_stride", 1))
    bar = tqdm(range(start, total), initial=start, total=total, desc=desc)
    for step in bar:
        x0, (weights, noise_weights), texts, index = _training_batch(
            data, rng, settings, num_frames, (weighting, noise_weighting), device)
        noise = torch.randn_like(x0)
        if noise_weights is not None:
            noise = noise * noise_weights
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=device)
        if first_frame_given:
            noisy = first_frame_conditioned_input(scheduler, x0, noise, timesteps)
        else:
            noisy = scheduler.add_noise(x0, noise, timesteps)

        def forward_backward():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device_type, dtype=autocast_dtype, enabled=use_autocast):
                pred = trainable.denoiser(noisy, timesteps, texts)
            loss = masked_diffusion_loss(pred, noise, weights, first_frame_given, trainable.normalised)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss {loss.item()} at step {step + 1} (clip {data.clip_paths[index]})")
            scaler.scale(loss).backward()
            return loss

        try:
            loss = forward_backward()
        except torch.OutOfMemoryError:
            if on_out_of_memory is None or step != start:
                raise
            log.warning("%s: the first step ran out of GPU memory; gradient checkpointing on", desc)
            optimizer.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            on_out_of_memory()
            on_out_of_memory = None
            loss = forward_backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        done = step + 1
        if done % settings["checkpoint_every"] == 0 and done < total:
            checkpoints.save(done, params, optimizer, rng, losses)
        if stop_after is not None and done >= stop_after:
            return losses, done >= total
    return losses, True


def apply_gradient_checkpointing(setting, device, enable: Callable[[], None]) -> Callable[[], None] | None:
    """``finetune.gradient_checkpointing`` on a GPU (``enable`` turns it on for the model):
    true = on now; false = off; auto = off while the GPU's free memory holds a step without it,
    i.e. the returned callback, for :func:`train_denoiser`'s ``on_out_of_memory``, turns it on
    when the first step runs out of memory. Never on CPUs: their memory is the host's, and
    checkpointing there only costs time."""
    if torch.device(device).type != "cuda" or setting is False:
        return None
    if setting is True:
        enable()
        return None
    return enable


def save_trained(write: Callable[[Path], None], out_dir: str | Path, info: dict) -> None:
    """A fine-tuned model (``write(folder)`` writes its files) and ``training.json`` with
    ``info`` into ``out_dir``, complete before the folder gets its name."""
    with atomic_dir(out_dir) as work:
        write(work)
        (work / "training.json").write_text(json.dumps(info, indent=2))


def write_loss_curve(losses: list[float], csv_path, png_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(csv_path) as tmp:
        tmp.write_text("step,loss\n" + "".join(f"{i + 1},{v}\n" for i, v in enumerate(losses)))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
