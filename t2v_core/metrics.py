"""CLIP metrics of the study (cosine similarities x 100), as defined in the design card.

- alignment: mean over frames of cos(frame, prompt);
- consistency: mean over consecutive frame pairs of cos(frame t, frame t+1);
- diversity: mean pairwise cos between the videos of one prompt from different seeds, each
  video embedded as the (renormalised) mean of its frame embeddings; lower = more diverse.

A video's frame embeddings are computed once and reused by all three. In the toy world a
fourth, ground-truth metric says whether the subject does the prompt's motion
(:func:`motion_scores`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

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


class ClipEmbedder:
    """Batched open_clip image and text embeddings (L2-normalised, float64 numpy)."""

    def __init__(self, model, preprocess, tokenizer, device="cpu", batch_size=32):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def frames(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(frames), self.batch_size):
            batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames[start:start + self.batch_size]])
            out.append(self.model.encode_image(batch.to(self.device)).float().cpu())
        return _normalise(torch.cat(out).double().numpy())

    @torch.no_grad()
    def text(self, prompt: str) -> np.ndarray:
        tokens = self.tokenizer([prompt]).to(self.device)
        return _normalise(self.model.encode_text(tokens).float().cpu().double().numpy()[0])


def evaluate_prompt_videos(embedder: ClipEmbedder, prompt: str, videos: dict[int, np.ndarray]) -> pd.DataFrame:
    """Per-video rows (seed, alignment, consistency) plus the prompt's diversity on every row."""
    text = embedder.text(prompt)
    embeddings = {seed: embedder.frames(frames) for seed, frames in sorted(videos.items())}
    rows = [
        {"seed": seed, "alignment": alignment(e, text), "consistency": consistency(e)}
        for seed, e in embeddings.items()
    ]
    table = pd.DataFrame(rows)
    table["prompt_diversity"] = diversity(list(embeddings.values()))
    return table


def motion_scores(prompt: str, videos: dict[int, np.ndarray]) -> pd.DataFrame:
    """The toy world's ground-truth motion metric of each video (seed): ``motion_correct``
    (100 when the subject does the prompt's motion, else 0), ``motion_magnitude`` (1 = as
    much as in the training clips; NaN when the subject is not found in half the frames) and
    ``tracked_fraction``; and ``subject_consistency``, a ground-truth frame consistency:
    100 x the mean IoU of the subject's masks in consecutive frames (a subject that jumps
    about between frames scores low, one that moves smoothly high; the toy CLIP, like any
    CLIP, hardly sees where a subject is)."""
    from .toy.motion_metric import score_motion
    from .toy.world import parse_caption

    subject, motion = parse_caption(prompt)
    if motion is None:
        raise ValueError(f"prompt {prompt!r}: names none of the toy world's motions, so its motion cannot be scored")
    rows = []
    for seed, frames in sorted(videos.items()):
        score = score_motion(frames, subject.colour, motion)
        rows.append({"seed": seed, "motion_correct": 100.0 * score["direction_correct"],
                     "motion_magnitude": score["magnitude_ratio"], "tracked_fraction": score["tracked_fraction"],
                     "subject_consistency": score["subject_consistency"]})
    return pd.DataFrame(rows)


def evaluate_videos(clip_dir, video_paths: dict[int, str | Path], prompt: str, ids: dict,
                    out_csv, batch_size=32, device="cpu", motion_metric: bool = False) -> pd.DataFrame:
    """Read the videos of one (method, motion, prompt), score them, write ``out_csv``
    (with the toy world's motion metric as well when ``motion_metric``)."""
    from .models.loading import load_clip
    from .video_io import atomic_path, read_video

    model, preprocess, tokenizer = load_clip(clip_dir, device=device)
    embedder = ClipEmbedder(model, preprocess, tokenizer, device=device, batch_size=batch_size)
    videos = {seed: read_video(path) for seed, path in video_paths.items()}
    table = evaluate_prompt_videos(embedder, prompt, videos)
    if motion_metric:
        table = table.merge(motion_scores(prompt, videos), on="seed", validate="one_to_one")
    for column, value in reversed(list({**ids, "prompt": prompt}.items())):
        table.insert(0, column, value)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
