"""What a fine-tuning run trains on, computed once before the loop: every clip's VAE posterior,
its foreground masks on the latent grid (when the method weights its loss by them) and the
embedding of its caption."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import load_masks
from ..sampling import encode_prompt
from ..video_io import read_video
from . import TrainingError


def resize_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (F, 3, height, width) in [-1, 1].

    Resized directly, without cropping, as LAMP's dataset does (the aspect ratio of a clip
    that differs from the video's is distorted).
    """
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


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


@dataclass
class TrainingSet:
    """One motion's clips, ready for the loop.

    ``latents[i]``: (2, C, F_clip, h, w), the posterior's mean and std of clip i;
    ``masks[i]``: (1, F_clip, h, w), its foreground fraction per latent pixel (None without masks);
    ``texts``: (N, 77, D), the caption embedding of every clip; ``prompts`` the captions.
    """

    clip_paths: list
    prompts: list[str]
    latents: list[torch.Tensor]
    masks: list[torch.Tensor] | None
    texts: torch.Tensor


def prepare_training_set(base_components: dict, clip_paths, prompt: str | list[str], video: dict,
                         mask_paths=None, device="cpu") -> TrainingSet:
    """Load, resize and encode a motion's clips (and pool their masks to the latent grid).

    ``prompt`` is the caption of every clip, or a list with one caption per clip.
    """
    clips, masks = load_training_clips(clip_paths, video["num_frames"], video["height"], video["width"],
                                       mask_paths)
    latents = encode_clips(base_components["vae"], clips, device)
    factor = clips[0].shape[-1] // latents[0].shape[-1]
    if masks is not None:
        masks = [F.avg_pool2d(m, factor).permute(1, 0, 2, 3) for m in masks]  # (1, F, h, w)
    # One caption for all clips (LAMP), or one per clip (a captions.csv beside the clips).
    prompts = [prompt] * len(clip_paths) if isinstance(prompt, str) else list(prompt)
    if len(prompts) != len(clip_paths):
        raise TrainingError(f"{len(prompts)} captions for {len(clip_paths)} clips")
    texts = encode_prompt(base_components["text_encoder"], base_components["tokenizer"], prompts, device)
    return TrainingSet(list(clip_paths), prompts, latents, masks, texts)
