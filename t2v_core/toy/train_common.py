"""What the toy world's four trainings share: seeded randomness, the world's subjects, image
conversions, the learning-rate schedule, loss logging and the files written beside each model
(loss curve, ``toy_metrics.json``, the ``prepared.json`` marker)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..models.layout import write_marker
from ..training.loop import write_loss_curve

log = logging.getLogger(__name__)

METRICS_FILE = "toy_metrics.json"


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for everything random in a training loop (batches, noise, timesteps),
    so that the global RNG is only used for the models' initial weights."""
    return torch.Generator().manual_seed(seed)


def all_subjects() -> list:
    """Every (shape, colour, background) of the world; groups of consecutive shapes share the rest."""
    from .world import BACKGROUNDS, COLOURS, SHAPES, Subject

    return [Subject(shape=shape, colour=colour, background=background)
            for background in BACKGROUNDS for colour in COLOURS for shape in SHAPES]


def uint8_to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1], as the VAE takes them."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def unit_range_to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def warmup_cosine(optimizer, steps: int, warmup: int = 50):
    """Linear warm-up (at most a tenth of the steps), then a cosine decay to 10%: the usual
    recipe, stable from scratch."""
    warmup = max(1, min(warmup, steps // 10))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + np.cos(np.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class LossLog:
    """Per-step losses, logged every ``every`` steps (mean since the last line) with the speed."""

    def __init__(self, name: str, total_steps: int, every: int = 50):
        self.name, self.total, self.every = name, total_steps, max(1, every)
        self.losses: list[float] = []
        self.start = time.perf_counter()

    def add(self, loss: float) -> None:
        if not np.isfinite(loss):
            raise RuntimeError(f"{self.name}: non-finite loss {loss} at step {len(self.losses) + 1}")
        self.losses.append(loss)
        step = len(self.losses)
        if step % self.every == 0 or step == self.total:
            recent = np.mean(self.losses[-self.every:])
            elapsed = time.perf_counter() - self.start
            log.info("%s step %d/%d loss %.4f (%.2f s/step)", self.name, step, self.total, recent, elapsed / step)

    @property
    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60.0


def finish_model_dir(work: Path, name: str, seed: int, loss_log: LossLog, metrics: dict) -> dict:
    """Loss curve, ``toy_metrics.json`` and the ``prepared.json`` marker (written last)."""
    write_loss_curve(loss_log.losses, work / "loss.csv", work / "loss.png")
    metrics = {"model": name, "seed": seed, "steps": len(loss_log.losses),
               "final_loss": float(np.mean(loss_log.losses[-20:])) if loss_log.losses else None,
               "train_minutes": round(loss_log.minutes, 2), **metrics}
    (work / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True))
    write_marker(work, {"kind": "toy", "seed": seed, "model": name})
    return metrics


#: Weights stored in half precision: the two text towers are mostly CLIP's 49408-token
#: embedding table (the world uses a few dozen of its rows), which halves to ~3 MB; loading
#: casts back to float32 (load_base_components' torch_dtype, open_clip's load_state_dict).
STORAGE_DTYPE = torch.float16


def folder_megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20
