"""The evaluate job: every metric of the chosen evaluators on the videos of one method, one row
per video (motion, prompt and seed)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import get_evaluator, metrics, switched_on


def computed(evaluator: str, chosen=()) -> list:
    """The metrics of ``evaluator`` that are computed when ``evaluation.metrics`` is ``chosen``:
    those with a ``compute``, switched on (see registry.switched_on)."""
    return [m for m in metrics(evaluator) if m.compute is not None and switched_on(m, chosen)]


def score_prompt_videos(evaluator: str, features: dict, chosen=()) -> pd.DataFrame:
    """One row per seed: the evaluator's per-video metrics, then its per-prompt ones (the same
    value on every row), from ``features`` (seed -> what the evaluator extracted); ``chosen``:
    ``evaluation.metrics``."""
    seeds = sorted(features)
    table = pd.DataFrame({"seed": seeds})
    chosen = computed(evaluator, chosen)
    for metric in [m for m in chosen if m.per == "video"]:
        table[metric.column] = [metric.compute(features[seed]) for seed in seeds]
    for metric in [m for m in chosen if m.per == "prompt"]:
        table[metric.column] = metric.compute([features[seed] for seed in seeds])
    return table


def load_models(evaluators: list[str], model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """evaluator -> its models, loaded once (its ``load``), or the prepared folders when it has
    no load step."""
    models = {}
    for name in evaluators:
        load = get_evaluator(name).load
        models[name] = model_dirs if load is None else load(model_dirs, device, batch_size)
    return models


def extract_features(evaluator: str, prompt: str, videos: dict, models: dict, device="cpu",
                     batch_size: int = 32, fps: float = 8.0, chosen=()) -> dict:
    """``evaluator``'s features of one prompt's videos, with ``models`` (its loaded models, or
    the prepared folders: kind -> path). The videos' frame rate (``fps``) and the
    names of its metrics being computed (``metrics``) go to a features function that takes them
    (the flow evaluator reads every k-th frame at high frame rates and computes only the flows
    its metrics need); one that does not is called without them."""
    features = get_evaluator(evaluator).features
    parameters = inspect.signature(features).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    options = {"fps": fps, "metrics": [m.name for m in computed(evaluator, chosen)]}
    options = {key: value for key, value in options.items() if takes_any or key in parameters}
    return features(prompt, videos, models, device=device, batch_size=batch_size, **options)


def evaluate_prompt(evaluators: list[str], prompt: str, videos: dict[int, np.ndarray], model_dirs: dict,
                    device="cpu", batch_size: int = 32, features_out: dict | None = None,
                    chosen=(), fps: float = 8.0, loaded: dict | None = None) -> pd.DataFrame:
    """Every per-video and per-prompt metric of ``evaluators`` on one prompt's videos (seed ->
    uint8 frames, at ``fps``); ``features_out`` (when given) receives each evaluator's features,
    for the metrics over a motion's prompts (:func:`score_motion`). ``loaded``: the evaluators'
    models as :func:`load_models` gives them (loaded here when not given)."""
    loaded = loaded if loaded is not None else load_models(evaluators, model_dirs, device, batch_size)
    table = None
    for name in evaluators:
        features = extract_features(name, prompt, videos, loaded[name], device, batch_size, fps, chosen)
        if features_out is not None:
            features_out[name] = features
        scores = score_prompt_videos(name, features, chosen)
        table = scores if table is None else table.merge(scores, on="seed", validate="one_to_one")
    return table


def score_motion(evaluators: list[str], features: dict[str, dict], tables: dict[str, pd.DataFrame],
                 chosen=()) -> None:
    """Add the metrics over a motion's prompts to each prompt's table (``features``: prompt_id ->
    evaluator -> seed -> features; ``tables``: prompt_id -> its rows), one value per prompt."""
    for name in evaluators:
        for metric in [m for m in computed(name, chosen) if m.per == "motion"]:
            values = metric.compute({pid: [own[name][seed] for seed in sorted(own[name])]
                                     for pid, own in features.items()})
            for pid, table in tables.items():
                table[metric.column] = values[pid]


class EvaluationError(RuntimeError):
    """A sampled video that cannot be evaluated; the message names it and how to redo it."""


def read_sample(path, sample_dir) -> np.ndarray:
    """A sampled video's frames; a damaged or missing one is an error that names the file and
    the command that samples it again (a plain re-run does not: its metrics are newer)."""
    from ..video_io import read_video

    try:
        return read_video(path)
    except Exception as error:  # decord's DECORDError, ffmpeg's OSError, FileNotFoundError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise EvaluationError(
            f"{path}: cannot be read ({reason}). Sample its folder again with: snakemake all --forcerun "
            f"{sample_dir} (and this run's --configfile and --cores, or --profile)"
        ) from error


def evaluate_videos(model_dirs: dict, samples: dict[str, tuple[str | Path, dict[str, str]]], seeds: list[int],
                    method: str, out_csv, evaluators=("clip",), batch_size=32, device="cpu",
                    metrics_on=(), fps: float = 8.0) -> pd.DataFrame:
    """Read the videos of one method (``samples``: motion -> (its sampling folder, prompt_id ->
    prompt); the files at ``prompts.sample_file(folder, ...)``), score them, write ``out_csv``:
    one row per video, with method, motion, prompt_id and prompt on every row. ``metrics_on``:
    the config's ``evaluation.metrics`` (the switched metrics it lists are computed too); ``fps``:
    the videos' frame rate (``video.fps``)."""
    from tqdm.auto import tqdm

    from ..atomic import atomic_path
    from ..prompts import sample_file

    tables = []
    loaded = load_models(list(evaluators), model_dirs, device, batch_size)
    with tqdm(total=sum(len(prompts) for _, prompts in samples.values()), desc=f"evaluate {method}") as bar:
        for motion, (sample_dir, prompts) in samples.items():
            motion_tables, motion_features = {}, {}
            for pid, prompt in prompts.items():
                videos = {seed: read_sample(sample_file(sample_dir, pid, seed), sample_dir) for seed in seeds}
                motion_features[pid] = {}
                table = evaluate_prompt(list(evaluators), prompt, videos, model_dirs, device=device,
                                        batch_size=batch_size, features_out=motion_features[pid],
                                        chosen=metrics_on, fps=fps, loaded=loaded)
                ids = {"method": method, "motion": motion, "prompt_id": pid, "prompt": prompt}
                for column, value in reversed(list(ids.items())):
                    table.insert(0, column, value)
                motion_tables[pid] = table
                bar.update()
            score_motion(list(evaluators), motion_features, motion_tables, metrics_on)
            tables.extend(motion_tables.values())
    table = pd.concat(tables, ignore_index=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
