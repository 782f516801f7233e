"""CLIP metrics of the study (cosine similarities x 100), as defined in the design card.

- alignment: mean over frames of cos(frame, prompt);
- consistency: mean over consecutive frame pairs of cos(frame t, frame t+1);
- diversity: mean pairwise cos between the videos of one prompt from different seeds, each
  video embedded as the (renormalised) mean of its frame embeddings; lower = more diverse.

A video's frame embeddings are computed once (:func:`clip_features`) and reused by all three.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


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
    v = _normalise(np.stack([_normalise(e).mean(axis=0) for e in videos_frame_embeddings]))
    similarity = v @ v.T
    upper = np.triu_indices(len(v), k=1)
    return float(100.0 * similarity[upper].mean())


@dataclass(frozen=True)
class ClipVideoFeatures:
    """What the CLIP metrics read of one video: its frames' and its prompt's embeddings."""

    frames: np.ndarray  # (F, D), L2-normalised
    text: np.ndarray  # (D,), L2-normalised


def clip_features(embedder, prompt: str, videos: dict[int, np.ndarray]) -> dict[int, ClipVideoFeatures]:
    """Every video of one prompt (seed -> uint8 frames) embedded once, with the prompt once."""
    text = embedder.text(prompt)
    return {seed: ClipVideoFeatures(embedder.frames(frames), text) for seed, frames in sorted(videos.items())}


def load_clip_features(prompt: str, videos: dict[int, np.ndarray], model_dirs: dict, device="cpu",
                       batch_size: int = 32) -> dict[int, ClipVideoFeatures]:
    """:func:`clip_features` with the prepared CLIP model of ``model_dirs["clip"]``."""
    return clip_features(_embedder(str(model_dirs["clip"]), str(device), batch_size), prompt, videos)


@functools.lru_cache(maxsize=1)
def _embedder(model_dir: str, device: str, batch_size: int):
    """The CLIP model loaded once per process: an evaluate job scores every prompt of a motion."""
    from ..models.loading import ClipEmbedder, load_clip

    model, preprocess, tokenizer = load_clip(model_dir, device=device)
    return ClipEmbedder(model, preprocess, tokenizer, device=device, batch_size=batch_size)
