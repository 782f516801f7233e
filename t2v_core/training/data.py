"""What a fine-tuning run trains on, computed once before the loop: every clip's VAE posterior,
its foreground masks on the latent grid (when the method weights its loss by them) and the
embedding of its caption."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import load_masks
from ..sampling import encode_prompt
from ..video_io import iter_frames
from . import TrainingError


def resize_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (F, 3, height, width) in [-1, 1].

    Resized directly, without cropping, as LAMP's dataset does (the aspect ratio of a clip
    that differs from the video's is distorted).
    """
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


#: Frames read, resized and VAE-encoded at a time: a long clip (real footage runs to hundreds
#: of frames) is never held in memory whole at its own size or in float.
CHUNK_FRAMES = 8


@torch.no_grad()
def encode_frames(vae, chunks, device) -> torch.Tensor:
    """VAE posterior of frames given as chunks (n, 3, H, W) in [-1, 1]: (2, C, F, h, w) =
    (mean, std), scaled, on the CPU."""
    means, stds = [], []
    scale = vae.config.scaling_factor
    for frames in chunks:
        posterior = vae.encode(frames.to(device, vae.dtype)).latent_dist
        means.append((posterior.mean * scale).float().cpu())
        stds.append((posterior.std * scale).float().cpu())
    return torch.stack([torch.cat(means), torch.cat(stds)]).permute(0, 2, 1, 3, 4)


def encode_clips(vae, clips: list[torch.Tensor], device, batch_size=CHUNK_FRAMES) -> list[torch.Tensor]:
    """VAE posterior of every frame, once: (2, C, F, h, w) per clip = (mean, std), scaled.

    LAMP's reference re-encodes each training clip at every step and takes a sample of the
    posterior; drawing ``mean + std * noise`` from this cache each step is the same thing.
    """
    return [encode_frames(vae, frames.split(batch_size), device) for frames in clips]


def resized_chunks(path, height: int, width: int, chunk: int = CHUNK_FRAMES):
    """A clip's frames, decoded in order, as float chunks (n, 3, height, width) in [-1, 1]."""
    frames = iter_frames(path)
    while block := list(itertools.islice(frames, chunk)):
        yield resize_frames(np.stack(block), height, width)


def mask_grid(masks: np.ndarray, height: int, width: int, factor: int, chunk: int = 64) -> torch.Tensor:
    """(F, H, W) bool masks of a clip as (1, F, height / factor, width / factor): resized to the
    video's size by area, then pooled to the latent grid (the foreground fraction of each latent
    pixel), ``chunk`` frames at a time (a float copy of a long clip's masks at their own size
    would take gigabytes)."""
    pooled = []
    for start in range(0, len(masks), chunk):
        m = torch.from_numpy(masks[start:start + chunk].astype(np.float32))[:, None]
        pooled.append(F.avg_pool2d(F.interpolate(m, size=(height, width), mode="area"), factor))
    return torch.cat(pooled).permute(1, 0, 2, 3)


@dataclass
class TrainingSet:
    """One motion's clips, ready for the loop.

    ``latents[i]``: (2, C, F_clip, h, w), the posterior's mean and std of clip i;
    ``masks[i]``: (1, F_clip, h, w), its foreground fraction per latent pixel (None without masks);
    ``texts``: (N, 77, D), the caption embedding of every clip; ``prompts`` the captions;
    ``empty_text``: (77, D), the empty caption's, for training with captions dropped at random.
    """

    clip_paths: list
    prompts: list[str]
    latents: list[torch.Tensor]
    masks: list[torch.Tensor] | None
    texts: torch.Tensor
    empty_text: torch.Tensor | None = None


def prepare_training_set(base_components: dict, clip_paths, prompt: str | list[str], video: dict,
                         mask_paths=None, device="cpu") -> TrainingSet:
    """Read, resize and encode a motion's clips, a few frames at a time (and pool their masks to
    the latent grid). Every clip shorter than ``video["num_frames"]`` is named in one error.

    ``prompt`` is the caption of every clip, or a list with one caption per clip.
    """
    height, width, needed = video["height"], video["width"], video["num_frames"]
    vae = base_components["vae"]
    latents, masks, short = [], [] if mask_paths is not None else None, []
    for index, path in enumerate(clip_paths):
        encoded = encode_frames(vae, resized_chunks(path, height, width), device)
        if encoded.shape[2] < needed:
            short.append(f"{path} ({encoded.shape[2]} frames)")
            continue
        latents.append(encoded)
        if mask_paths is not None:
            clip_masks = load_masks(mask_paths[index])
            if len(clip_masks) != encoded.shape[2]:
                raise TrainingError(f"{mask_paths[index]}: masks of {len(clip_masks)} frames for the "
                                    f"{encoded.shape[2]} frames of {path}")
            masks.append(mask_grid(clip_masks, height, width, width // encoded.shape[-1]))
    if short:
        raise TrainingError(f"clips shorter than the {needed} frames needed for training: " + ", ".join(short))
    # One caption for all clips (LAMP), or one per clip (a captions.csv beside the clips).
    prompts = [prompt] * len(clip_paths) if isinstance(prompt, str) else list(prompt)
    if len(prompts) != len(clip_paths):
        raise TrainingError(f"{len(prompts)} captions for {len(clip_paths)} clips")
    texts = encode_prompt(base_components["text_encoder"], base_components["tokenizer"], prompts + [""], device)
    return TrainingSet(list(clip_paths), prompts, latents, masks, texts[:-1], texts[-1])
