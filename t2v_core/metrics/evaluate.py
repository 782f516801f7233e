"""The evaluate job: every metric of the chosen evaluators on the videos of one (method, motion,
prompt), one row per video (seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .registry import get_evaluator, metrics


def score_prompt_videos(evaluator: str, features: dict) -> pd.DataFrame:
    """One row per seed: the evaluator's per-video metrics, then its per-prompt ones (the same
    value on every row), from ``features`` (seed -> what the evaluator extracted)."""
    seeds = sorted(features)
    table = pd.DataFrame({"seed": seeds})
    chosen = metrics(evaluator)
    for metric in [m for m in chosen if m.per == "video"]:
        table[metric.column] = [metric.compute(features[seed]) for seed in seeds]
    for metric in [m for m in chosen if m.per == "prompt"]:
        table[metric.column] = metric.compute([features[seed] for seed in seeds])
    return table


def evaluate_prompt(evaluators: list[str], prompt: str, videos: dict[int, np.ndarray], model_dirs: dict,
                    device="cpu", batch_size: int = 32) -> pd.DataFrame:
    """Every metric of ``evaluators`` on one prompt's videos (seed -> uint8 frames)."""
    table = None
    for name in evaluators:
        features = get_evaluator(name).features(prompt, videos, model_dirs, device=device, batch_size=batch_size)
        scores = score_prompt_videos(name, features)
        table = scores if table is None else table.merge(scores, on="seed", validate="one_to_one")
    return table


def evaluate_videos(model_dirs: dict, video_paths: dict[int, str | Path], prompt: str, ids: dict, out_csv,
                    evaluators=("clip",), batch_size=32, device="cpu") -> pd.DataFrame:
    """Read the videos of one (method, motion, prompt), score them, write ``out_csv`` with the
    ``ids`` (method, motion, prompt_id) and the prompt on every row."""
    from ..video_io import atomic_path, read_video

    videos = {seed: read_video(path) for seed, path in video_paths.items()}
    table = evaluate_prompt(list(evaluators), prompt, videos, model_dirs, device=device, batch_size=batch_size)
    for column, value in reversed(list({**ids, "prompt": prompt}.items())):
        table.insert(0, column, value)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
