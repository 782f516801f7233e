"""The toy world's CLIP for the metrics: an ``open_clip.CLIP`` trained contrastively from scratch
on the world's (image, caption) pairs, saved in open_clip's ``local-dir:`` layout as tiny.py does.

Captions repeat within a batch (the world has 48 still captions), so the contrastive targets
are soft: every pair with the same caption is a positive, instead of the diagonal alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_dir
from ..models.layout import CLIP_CONFIG_FILE, CLIP_WEIGHTS_FILE
from .train_common import (
    STORAGE_DTYPE, LossLog, all_subjects, finish_model_dir, folder_megabytes, seeded_generator,
    warmup_cosine,
)
from .world import MOTIONS, caption, motion_clips, sample_images

log = logging.getLogger(__name__)

#: A ViT-on-64x64 image tower (8x8 patches of 8 pixels) and a text tower as narrow as the
#: tiny one's: its 49408-token embedding table is most of the file.
TOY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


@dataclass(frozen=True)
class ClipSettings:
    num_images: int = 6144
    #: Frames of motion clips are paired with their motion captions, the prompts the metrics score.
    motion_clips_per_motion: int = 64
    motion_clip_frames: int = 8
    steps: int = 1000
    batch_size: int = 128
    learning_rate: float = 1e-3
    held_out_images: int = 512
    held_out_clips_per_motion: int = 8
    log_every: int = 50


def training_pairs(settings: ClipSettings, image_size: int, seed: int):
    """uint8 images, the index of each one's caption, and the list of distinct captions."""
    images, _, captions = sample_images(settings.num_images, image_size, seed)
    frames, frame_captions = [images], list(captions)
    for index, motion in enumerate(MOTIONS):
        for subject, clip, _ in motion_clips(motion, settings.motion_clips_per_motion, settings.motion_clip_frames,
                                             image_size, seed + 1000 * (index + 1)):
            frames.append(clip)
            frame_captions += [caption(subject, motion)] * len(clip)
    distinct = sorted(set(frame_captions))
    position = {text: i for i, text in enumerate(distinct)}
    return np.concatenate(frames), torch.tensor([position[c] for c in frame_captions]), distinct


def normalise_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> the tensors open_clip's preprocess makes (same size: no resize)."""
    import open_clip

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN)[:, None, None]
    std = torch.tensor(open_clip.OPENAI_DATASET_STD)[:, None, None]
    return (x - mean) / std


def contrastive_loss(model, images: torch.Tensor, tokens: torch.Tensor, caption_index: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with every same-caption pair as a positive (soft targets)."""
    image_features, text_features, logit_scale = model(images, tokens)
    logits = logit_scale * image_features @ text_features.T
    same = (caption_index[:, None] == caption_index[None, :]).float()
    targets = same / same.sum(1, keepdim=True)  # symmetric, so the same targets serve both directions
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def train_clip(out_dir, seed: int = 0, settings: ClipSettings = ClipSettings(), clip_config: dict = TOY_CLIP) -> dict:
    import open_clip
    from safetensors.torch import save_file

    image_size = clip_config["vision_cfg"]["image_size"]
    images, caption_index, captions = training_pairs(settings, image_size, seed)
    pixels = normalise_images(images)
    caption_tokens = open_clip.tokenize(captions)
    held_out, _, held_out_captions = sample_images(settings.held_out_images, image_size, seed + 10_000)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**clip_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.1)
    schedule = warmup_cosine(optimizer, settings.steps)
    generator = seeded_generator(seed)
    evaluation = torch.randperm(len(images), generator=seeded_generator(seed + 1))[:settings.batch_size]
    initial_eval_loss = evaluation_loss(model, pixels, caption_tokens, caption_index, evaluation)
    losses = LossLog("clip", settings.steps, settings.log_every)
    model.train()
    for _ in range(settings.steps):
        index = torch.randint(len(images), (settings.batch_size,), generator=generator)
        loss = contrastive_loss(model, pixels[index], caption_tokens[caption_index[index]], caption_index[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():  # CLIP's clamp: a temperature below 1/100 makes training unstable
            model.logit_scale.clamp_(0, np.log(100))
        losses.add(float(loss.detach()))
    model.eval()
    metrics = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_pairs": len(images), "distinct_captions": len(captions),
        "eval_loss_before": initial_eval_loss,
        "eval_loss_after": evaluation_loss(model, pixels, caption_tokens, caption_index, evaluation),
        "settings": asdict(settings), "model_cfg": clip_config,
    }
    with atomic_dir(out_dir) as work:
        save_file({k: v.to(STORAGE_DTYPE).contiguous() for k, v in model.state_dict().items()}, work / CLIP_WEIGHTS_FILE)
        preprocess = {"size": image_size, "mean": list(open_clip.OPENAI_DATASET_MEAN),
                      "std": list(open_clip.OPENAI_DATASET_STD)}
        (work / CLIP_CONFIG_FILE).write_text(json.dumps({"model_cfg": clip_config, "preprocess_cfg": preprocess},
                                                        indent=2))
        # Checked through the real loading code and the metrics' embedder, on images never trained on.
        subjects = subjects_of(held_out_captions)
        metrics["zero_shot_held_out"] = zero_shot_accuracy(work, held_out, subjects)
        metrics["zero_shot_motion_frames"] = motion_frame_accuracy(
            work, image_size, seed + 20_000, settings.held_out_clips_per_motion, settings.motion_clip_frames)
        metrics = finish_model_dir(work, "clip", seed, losses, metrics)
    metrics["megabytes"] = round(folder_megabytes(out_dir), 2)
    return metrics


@torch.no_grad()
def evaluation_loss(model, pixels, caption_tokens, caption_index, index) -> float:
    return float(contrastive_loss(model, pixels[index], caption_tokens[caption_index[index]], caption_index[index]))


def subjects_of(captions: list[str]) -> list:
    by_caption = {caption(subject): subject for subject in all_subjects()}
    return [by_caption[text] for text in captions]


def load_embedder(clip_dir):
    """The metrics' embedder on a model loaded by the metrics' loading code."""
    from ..models.loading import ClipEmbedder
    from ..models.loading import load_clip

    return ClipEmbedder(*load_clip(clip_dir))


def zero_shot_accuracy(clip, images: np.ndarray, subjects: list, motion: str | None = None) -> dict:
    """Accuracy of choosing each image's caption among all subjects' captions (with ``motion``,
    if given), and of the colour, shape and background of the chosen one. ``clip``: a model
    folder or a :class:`~t2v_core.models.loading.ClipEmbedder`."""
    embedder = clip if hasattr(clip, "frames") else load_embedder(clip)
    candidates = all_subjects()
    text = np.stack([embedder.text(caption(subject, motion)) for subject in candidates])
    chosen = [candidates[i] for i in np.argmax(embedder.frames(images) @ text.T, axis=1)]
    accuracy = {f"{part}_accuracy": float(np.mean([getattr(c, part) == getattr(s, part)
                                                   for c, s in zip(chosen, subjects)]))
                for part in ("colour", "shape", "background")}
    accuracy["caption_accuracy"] = float(np.mean([c == s for c, s in zip(chosen, subjects)]))
    accuracy["images"] = len(images)
    return accuracy


def motion_frame_accuracy(clip_dir, image_size: int, seed: int, clips_per_motion: int = 8, frames: int = 8) -> dict:
    """Zero-shot accuracy on frames of held-out motion clips among captions with their motion."""
    per_motion, embedder = {}, load_embedder(clip_dir)
    for index, motion in enumerate(MOTIONS):
        clips = motion_clips(motion, clips_per_motion, frames, image_size, seed + index)
        images = np.concatenate([clip for _, clip, _ in clips])
        subjects = [subject for subject, clip, _ in clips for _ in range(len(clip))]
        per_motion[motion] = zero_shot_accuracy(embedder, images, subjects, motion)["caption_accuracy"]
    return per_motion
