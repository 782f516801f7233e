"""CLIP metrics of the study (cosine similarities x 100), as defined in the design card.

- alignment: mean over frames of cos(frame, prompt);
- consistency: mean over consecutive frame pairs of cos(frame t, frame t+1);
- diversity, three readings (the poster does not define it; lower = more diverse):
  across seeds (the mean pairwise cos between the videos of one prompt from different seeds,
  each video embedded as the renormalised mean of its frame embeddings), frame by frame across
  seeds (the mean over seed pairs and frame indices of cos(frame f of one, frame f of the
  other)), and across prompts (the mean cos between a prompt's videos and the videos of the
  other prompts of its motion, embedded as across seeds).

A video's frame embeddings are computed once (:func:`clip_features`) and reused by all three.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def video_embeddings(videos_frame_embeddings: list[np.ndarray]) -> np.ndarray:
    """(N, D): each video as the renormalised mean of its normalised frame embeddings."""
    return _normalise(np.stack([_normalise(e).mean(axis=0) for e in videos_frame_embeddings]))


def alignment(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> float:
    f, t = _normalise(frame_embeddings), _normalise(text_embedding)
    return float(100.0 * np.mean(f @ t))


def consistency(frame_embeddings: np.ndarray) -> float:
    f = _normalise(frame_embeddings)
    if len(f) < 2:
        raise ValueError("consistency needs at least 2 frames")
    return float(100.0 * np.mean(np.sum(f[1:] * f[:-1], axis=-1)))


def diversity(videos_frame_embeddings: list[np.ndarray]) -> float:
    """Mean pairwise cosine x 100 between videos of one prompt; NaN (with a warning) if < 2."""
    if len(videos_frame_embeddings) < 2:
        log.warning("diversity needs >= 2 seeds per prompt; got %d, reporting NaN",
                    len(videos_frame_embeddings))
        return math.nan
    v = video_embeddings(videos_frame_embeddings)
    similarity = v @ v.T
    upper = np.triu_indices(len(v), k=1)
    return float(100.0 * similarity[upper].mean())


def diversity_frames(videos_frame_embeddings: list[np.ndarray]) -> float:
    """Mean over pairs of videos of one prompt and over frame indices f of cos(frame f, frame f)
    x 100; NaN (with a warning) if < 2 videos."""
    if len(videos_frame_embeddings) < 2:
        log.warning("frame-level diversity needs >= 2 seeds per prompt; got %d, reporting NaN",
                    len(videos_frame_embeddings))
        return math.nan
    videos = [_normalise(e) for e in videos_frame_embeddings]
    pairs = [np.mean(np.sum(a * b, axis=-1)) for i, a in enumerate(videos) for b in videos[i + 1:]]
    return float(100.0 * np.mean(pairs))


def diversity_across_prompts(prompts_videos: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Per prompt of one motion (prompt -> its videos' frame embeddings): the mean cos x 100
    between each of its videos and each video of the motion's other prompts, videos embedded as
    in :func:`diversity`. The motion's value is the mean over its prompts (with equal numbers of
    videos per prompt, the mean over all pairs of videos of different prompts). NaN (with a
    warning) for a motion with a single prompt."""
    if len(prompts_videos) < 2:
        log.warning("diversity across prompts needs >= 2 prompts per motion; got %d, reporting NaN",
                    len(prompts_videos))
        return {prompt: math.nan for prompt in prompts_videos}
    embedded = {p: video_embeddings(videos) for p, videos in prompts_videos.items()}
    values = {}
    for prompt, own in embedded.items():
        others = np.concatenate([v for p, v in embedded.items() if p != prompt])
        values[prompt] = float(100.0 * np.mean(own @ others.T))
    return values


@dataclass(frozen=True)
class ClipVideoFeatures:
    """What the CLIP metrics read of one video: its frames' and its prompt's embeddings."""

    frames: np.ndarray  # (F, D), L2-normalised
    text: np.ndarray  # (D,), L2-normalised


def clip_features(embedder, prompt: str, videos: dict[int, np.ndarray]) -> dict[int, ClipVideoFeatures]:
    """Every video of one prompt (seed -> uint8 frames) embedded once, with the prompt once."""
    text = embedder.text(prompt)
    return {seed: ClipVideoFeatures(embedder.frames(frames), text) for seed, frames in sorted(videos.items())}


def load_clip_features(prompt: str, videos: dict[int, np.ndarray], models: dict, device="cpu",
                       batch_size: int = 32) -> dict[int, ClipVideoFeatures]:
    """:func:`clip_features` with ``models["clip"]``: the prepared CLIP model's folder, or its
    embedder as :func:`load_embedder` gives it."""
    return clip_features(_embedder(models, device, batch_size), prompt, videos)


def load_clip_patch_tokens(prompt: str, videos: dict[int, np.ndarray], models: dict, device="cpu",
                           batch_size: int = 32) -> dict[int, np.ndarray]:
    """Every video of one prompt (seed -> uint8 frames) as its frames' flattened patch tokens
    (F, T * W) in ``models["clip"]`` (see ``ClipEmbedder.frame_tokens``)."""
    embedder = _embedder(models, device, batch_size)
    return {seed: embedder.frame_tokens(frames) for seed, frames in sorted(videos.items())}


def load_embedder(model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """The evaluators' load step: ``{"clip": the CLIP embedder}``, once per evaluate job."""
    from ..models.loading import ClipEmbedder, load_clip

    model, preprocess, tokenizer = load_clip(model_dirs["clip"], device=device)
    return {"clip": ClipEmbedder(model, preprocess, tokenizer, device=device, batch_size=batch_size)}


def _embedder(models: dict, device, batch_size: int):
    from ..models.loading import loaded_model

    return loaded_model(models["clip"], lambda folder, dev: load_embedder({"clip": folder}, dev, batch_size)["clip"],
                        device)
