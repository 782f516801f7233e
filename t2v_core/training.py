"""Few-shot fine-tuning of the temporal modules (LAMP, and Ours with a mask-weighted loss).

First-frame conditioning as LAMP: the first frame's latent is given clean and gets no loss;
the MSE of the predicted noise is taken on frames 2..F only. Ours weights it per latent
pixel by the SAM foreground mask (``background + (foreground - background) * mask``).

The VAE latents of every training clip are computed once, before the loop. Checkpoints
(adapter, AdamW state, step, random states; all safetensors / JSON) are written every
``checkpoint_every`` steps beside the output, and a re-run resumes from the latest one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .masks import load_masks
from .video_io import atomic_path, read_video
from .video_unet import TemporalAdapter, VideoUNet

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    pass


def resize_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (F, 3, height, width) in [-1, 1].

    Resized directly, without cropping, as LAMP's dataset does (the aspect ratio of a clip
    that differs from the video's is distorted).
    """
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def masked_diffusion_loss(pred, target, weights=None):
    """Mean squared error on frames 2..F of (B, C, F, h, w) tensors; optional per-pixel
    weights (B, 1, F, h, w). With all weights 1 it equals the unweighted loss."""
    error = (pred[:, :, 1:].float() - target[:, :, 1:].float()) ** 2
    if weights is not None:
        error = error * weights[:, :, 1:].float()
    return error.mean()


def first_frame_conditioned_input(scheduler, x0, noise, timestep):
    """The UNet's training input: every frame noised to ``timestep`` but the first, which is
    given clean (same timestep for all frames, as LAMP's reference)."""
    noisy = scheduler.add_noise(x0, noise, timestep)
    noisy[:, :, 0] = x0[:, :, 0]
    return noisy


@torch.no_grad()
def encode_clips(vae, clips: list[torch.Tensor], device, batch_size=8) -> list[torch.Tensor]:
    """VAE posterior of every frame, once: (2, C, F, h, w) per clip = (mean, std), scaled.

    LAMP's reference re-encodes each training clip at every step and takes a sample of the
    posterior; drawing ``mean + std * noise`` from this cache each step is the same thing.
    """
    out = []
    scale = vae.config.scaling_factor
    for frames in clips:
        means, stds = [], []
        for i in range(0, len(frames), batch_size):
            posterior = vae.encode(frames[i:i + batch_size].to(device, vae.dtype)).latent_dist
            means.append(posterior.mean * scale)
            stds.append(posterior.std * scale)
        out.append(torch.stack([torch.cat(means), torch.cat(stds)]).permute(0, 2, 1, 3, 4).float().cpu())
    return out


@torch.no_grad()
def encode_prompt(text_encoder, tokenizer, prompts: list[str], device) -> torch.Tensor:
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    return text_encoder(tokens.input_ids.to(device))[0]


def load_training_clips(clip_paths, num_frames, height, width, mask_paths=None):
    """Frames (F_clip, 3, H, W) per clip, and masks (F_clip, 1, H, W) per clip if given.

    Every clip shorter than ``num_frames`` is named in one error.
    """
    clips, masks, short = [], [], []
    for index, path in enumerate(clip_paths):
        frames = read_video(path)
        if len(frames) < num_frames:
            short.append(f"{path} ({len(frames)} frames)")
            continue
        clips.append(resize_frames(frames, height, width))
        if mask_paths is not None:
            m = torch.from_numpy(load_masks(mask_paths[index]).astype(np.float32))[:, None]
            masks.append(F.interpolate(m, size=(height, width), mode="area"))
    if short:
        raise TrainingError(
            f"clips shorter than the {num_frames} frames needed for training: " + ", ".join(short)
        )
    return clips, (masks if mask_paths is not None else None)


#: Settings that a checkpoint stays valid across: with a constant learning rate and one seed,
#: the first N steps of a longer run are the same steps, so more steps can resume.
RESUMABLE_ACROSS = ("steps", "checkpoint_every")


def run_fingerprint(files: list, prompts: list[str], video: dict, finetune: dict, method: str) -> str:
    """sha256 of what a run's steps depend on: the clips' and masks' bytes, the captions, the
    video size and the fine-tuning settings (except RESUMABLE_ACROSS)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).name.encode())
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    settings = {k: v for k, v in finetune.items() if k not in RESUMABLE_ACROSS}
    digest.update(json.dumps([prompts, video, settings, method], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _save_checkpoint(ckpt_dir: Path, step, adapter, optimizer, rng, losses, fingerprint: str) -> None:
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    adapter.save_pretrained(tmp / "adapter")
    state = optimizer.state_dict()
    tensors = {}
    for index, param_state in state["state"].items():
        for name, value in param_state.items():
            tensors[f"{index}.{name}"] = torch.as_tensor(value).clone()
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, tmp / "optimizer.safetensors")
    (tmp / "state.json").write_text(json.dumps({
        "step": step, "numpy_rng": rng.bit_generator.state, "losses": losses, "fingerprint": fingerprint,
    }))
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    tmp.rename(ckpt_dir)


def _load_checkpoint(ckpt_dir: Path, adapter, optimizer, rng):
    loaded = TemporalAdapter.from_pretrained(ckpt_dir / "adapter")
    adapter.load_state_dict(loaded.state_dict())
    tensors = load_file(ckpt_dir / "optimizer.safetensors")
    torch.set_rng_state(tensors.pop("torch_rng"))
    state = optimizer.state_dict()
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(state)
    info = json.loads((ckpt_dir / "state.json").read_text())
    rng.bit_generator.state = info["numpy_rng"]
    return info["step"], info["losses"]


def latest_checkpoint(checkpoint_root: Path) -> Path | None:
    done = sorted(checkpoint_root.glob("step_*[0-9]"), key=lambda p: int(p.name.split("_")[1]))
    return done[-1] if done else None


def finetune_motion(
    base_components: dict,
    clip_paths: list[str],
    prompt: str | list[str],
    out_dir: str | Path,
    checkpoint_root: str | Path,
    video: dict,
    finetune: dict,
    method: str,
    mask_paths: list[str] | None = None,
    device: str = "cpu",
    stop_after: int | None = None,
):
    """Fine-tune a :class:`TemporalAdapter` on one motion's clips; save it to ``out_dir``.

    ``prompt`` is the caption of every clip, or a list with one caption per clip.

    ``method`` is ``lamp`` or ``ours`` (mask-weighted, needs ``mask_paths``). Returns the
    list of per-step losses. ``stop_after`` ends the run early (after that many steps in
    total) without writing ``out_dir``, as a kill would; used to test resuming.
    """
    settings = finetune[method]
    if method == "ours" and mask_paths is None:
        raise TrainingError("method 'ours' needs the foreground masks of the clips")
    unet, vae = base_components["unet"], base_components["vae"]
    num_frames, height, width = video["num_frames"], video["height"], video["width"]
    clips, masks = load_training_clips(clip_paths, num_frames, height, width,
                                       mask_paths if method == "ours" else None)
    latents = encode_clips(vae, clips, device)
    factor = clips[0].shape[-1] // latents[0].shape[-1]
    if masks is not None:
        masks = [F.avg_pool2d(m, factor).permute(1, 0, 2, 3) for m in masks]  # (1, F, h, w)
    # One caption for all clips (LAMP), or one per clip (a captions.csv beside the clips).
    prompts = [prompt] * len(clip_paths) if isinstance(prompt, str) else list(prompt)
    if len(prompts) != len(clip_paths):
        raise TrainingError(f"{len(prompts)} captions for {len(clip_paths)} clips")
    texts = encode_prompt(base_components["text_encoder"], base_components["tokenizer"], prompts, device)

    torch.manual_seed(finetune["seed"])
    adapter = TemporalAdapter.from_unet(unet, init=settings["init"]).to(device)
    model = VideoUNet(unet, adapter).to(device)
    unet.requires_grad_(False)
    adapter.requires_grad_(False)
    trainable = [p for _, p in adapter.trainable_parameters()]
    for parameter in trainable:
        parameter.requires_grad_(True)
    adapter.train()
    if finetune["gradient_checkpointing"] and device != "cpu":
        unet.enable_gradient_checkpointing()
        unet.train()
    # LAMP's optimiser: AdamW, weight decay 1e-2, constant learning rate, gradients clipped at 1.
    optimizer = torch.optim.AdamW(trainable, lr=finetune["learning_rate"], weight_decay=1e-2)
    scheduler = base_components["scheduler"]
    rng = np.random.default_rng(finetune["seed"])
    checkpoint_root = Path(checkpoint_root)
    start, losses = 0, []
    fingerprint = run_fingerprint([*clip_paths, *(mask_paths if method == "ours" else [])], prompts, video,
                                  finetune, method)
    latest = latest_checkpoint(checkpoint_root)
    if latest is not None and json.loads((latest / "state.json").read_text()).get("fingerprint") != fingerprint:
        # left by a run with other clips, masks, captions or settings: its steps are not ours
        log.warning("%s: checkpoint of a run with other data or settings; starting afresh", latest)
        shutil.rmtree(checkpoint_root)
        latest = None
    if latest is not None:
        start, losses = _load_checkpoint(latest, adapter, optimizer, rng)
        log.info("resuming from %s (step %d)", latest, start)
    autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(finetune["mixed_precision"])
    device_type = torch.device(device).type
    # bf16 autocast runs on CPUs too; fp16 only where it is fast (CUDA), fp32 elsewhere.
    use_autocast = autocast_dtype == torch.bfloat16 or (autocast_dtype is not None and device_type == "cuda")
    # fp16 gradients of the (fp32) adapter need loss scaling; bf16 and fp32 do not.
    scaler = torch.amp.GradScaler(device_type, enabled=use_autocast and autocast_dtype == torch.float16)
    weights = (settings.get("background_weight"), settings.get("foreground_weight"))
    total = finetune["steps"]
    bar = tqdm(range(start, total), initial=start, total=total, desc=f"finetune {method}")
    for step in bar:
        index = int(rng.integers(len(latents)))
        clip = latents[index]
        offset = int(rng.integers(clip.shape[2] - num_frames + 1))
        flip = bool(finetune["random_flip"] and rng.random() < 0.5)
        mean, std = clip[:, :, offset:offset + num_frames].to(device)
        x0 = (mean + std * torch.randn_like(std))[None]
        w = None
        if masks is not None:
            bg, fg = weights
            w = (bg + (fg - bg) * masks[index][:, offset:offset + num_frames])[None].to(device)
        if flip:
            x0 = x0.flip(-1)
            w = w.flip(-1) if w is not None else None
        noise = torch.randn_like(x0)
        timestep = torch.randint(0, scheduler.config.num_train_timesteps, (1,), device=device)
        noisy = first_frame_conditioned_input(scheduler, x0, noise, timestep)
        with torch.autocast(device_type=device_type, dtype=autocast_dtype, enabled=use_autocast):
            pred = model(noisy, timestep, texts[index:index + 1])
        loss = masked_diffusion_loss(pred, noise, w)
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss {loss.item()} at step {step + 1} (clip {clip_paths[index]})")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        done = step + 1
        if done % finetune["checkpoint_every"] == 0 and done < total:
            _save_checkpoint(checkpoint_root / f"step_{done}", done, adapter, optimizer, rng, losses, fingerprint)
            for old in checkpoint_root.glob("step_*[0-9]"):
                if old.name != f"step_{done}":
                    shutil.rmtree(old)
        if stop_after is not None and done >= stop_after:
            return losses
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    adapter.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(
        {"method": method, "prompt": prompt, "steps": total, "clips": [str(p) for p in clip_paths],
         "final_loss": losses[-1] if losses else math.nan}, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return losses


def write_loss_curve(losses: list[float], csv_path, png_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(csv_path) as tmp:
        tmp.write_text("step,loss\n" + "".join(f"{i + 1},{v}\n" for i, v in enumerate(losses)))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (frames 2..F)")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
