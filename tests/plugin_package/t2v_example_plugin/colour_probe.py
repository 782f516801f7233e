"""A metric with a model kind of its own: the ``colour_probe`` model (a linear map of a frame's
mean RGB to one number, in ``probe.safetensors``) and the per-video metric ``probe_score``, the
mean over frames of that number; switched on by ``evaluation.metrics: [probe_score]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2v_core.metrics.registry import Evaluator, Metric, register_evaluator, register_metric
from t2v_core.models.prepare import register_model_kind
from t2v_core.models.kinds import ModelKind
from t2v_core.settings import properties

WEIGHTS_FILE = "probe.safetensors"


def create_tiny(work_dir: Path, seed: int) -> None:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    save_file({"weight": torch.randn(1, 3, generator=generator), "bias": torch.randn(1, generator=generator)},
              str(work_dir / WEIGHTS_FILE))


def download(work_dir: Path, settings: dict) -> None:
    from t2v_core.download import download_file

    download_file(settings["url"], work_dir / WEIGHTS_FILE, sha256=settings["sha256"])


def load_probe(model_dir) -> tuple[np.ndarray, float]:
    from safetensors.numpy import load_file

    state = load_file(str(Path(model_dir) / WEIGHTS_FILE))
    return state["weight"][0].astype(np.float64), float(state["bias"][0])


def probe_features(prompt, videos, model_dirs, device="cpu", batch_size=32) -> dict:
    """seed -> the probe's number of each frame."""
    weight, bias = load_probe(model_dirs["colour_probe"])
    return {seed: frames.reshape(len(frames), -1, 3).mean(axis=1) / 255.0 @ weight + bias
            for seed, frames in videos.items()}


register_model_kind(ModelKind(
    "colour_probe", "A linear probe of a frame's mean colour (the example plugin's metric).",
    settings=properties("""\
url:
  type: string
  default: http://127.0.0.1:8000/probe.safetensors
  description: Download URL of probe.safetensors.
sha256:
  type: [string, "null"]
  default: null
  description: Expected sha256 of the file (null = not checked).
"""),
    download=download, create_tiny=create_tiny,
    pin=lambda settings: f"{settings['url']}, sha256 {settings['sha256'] or 'NOT PINNED'}",
))
register_evaluator(Evaluator("colour_probe", probe_features, models=("colour_probe",),
                             applies=lambda config: "probe_score" in config["evaluation"]["metrics"],
                             description="a linear probe of the frames' mean colours"))
register_metric(Metric("probe_score", "Probe score", "↑", "video", "colour_probe",
                       lambda per_frame: float(np.mean(per_frame)),
                       "the colour probe's number, averaged over the frames", switch="probe_score"))
