"""Train the toy world's models from scratch, small enough for a CPU, in the real formats.

``python -m t2v_core.toy.train --out DIR [--only vae,unet,clip,sam] [--seed 0]`` writes

- ``DIR/vae``: the autoencoder alone (an ``AutoencoderKL`` folder), the input of ``unet``;
- ``DIR/base``: a Stable-Diffusion-v1-shaped pipeline folder (VAE + UNet + CLIP text encoder);
- ``DIR/clip``: an open_clip model in the ``local-dir:`` layout, for the metrics;
- ``DIR/sam``: the tiny SAM fine-tuned on the world's masks,

each in the layout that :mod:`t2v_core.models.tiny` writes, so that
:mod:`t2v_core.models.loading` loads them unchanged. Next to each model: ``toy_metrics.json``
(final quality numbers, training time) and its loss curve (``loss.csv``, ``loss.png``).

This module holds the pieces that the four trainings share; each training is in its own
module (:mod:`.train_diffusion`, :mod:`.train_clip`, :mod:`.train_sam`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..models.layout import write_marker
from ..training import write_loss_curve

log = logging.getLogger(__name__)

MODEL_NAMES = ("vae", "unet", "clip", "sam")
METRICS_FILE = "toy_metrics.json"
#: Threads of every training: results are only reproducible with the same number.
NUM_THREADS = 2


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


def train_models(out_dir: str | Path, only=MODEL_NAMES, seed: int = 0) -> dict:
    """Train the named models into ``out_dir``, the VAE first (the UNet is trained on its latents)
    and the CLIP before the UNet (it names the shapes of the UNet's samples, when it is there)."""
    from .train_clip import train_clip
    from .train_diffusion import train_text_to_image, train_vae
    from .train_sam import train_sam

    out_dir = Path(out_dir)
    unknown = set(only) - set(MODEL_NAMES)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; expected some of {MODEL_NAMES}")
    trainings = {
        "vae": lambda: train_vae(out_dir / "vae", seed=seed),
        "unet": lambda: train_text_to_image(out_dir / "base", out_dir / "vae", seed=seed, clip_dir=out_dir / "clip"),
        "clip": lambda: train_clip(out_dir / "clip", seed=seed),
        "sam": lambda: train_sam(out_dir / "sam", seed=seed),
    }
    results = {}
    for name in ("vae", "clip", "unet", "sam"):
        if name in only:
            log.info("training %s", name)
            results[name] = trainings[name]()
            log.info("%s done: %s", name, json.dumps(results[name], sort_keys=True))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m t2v_core.toy.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder of the trained models")
    parser.add_argument("--only", default=",".join(MODEL_NAMES),
                        help=f"comma-separated models to train (default: all of {','.join(MODEL_NAMES)})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("t2v_core").setLevel(logging.INFO)  # progress lines; open_clip's INFO chatter stays off
    # Same thread count, same float summation order: the same files from the same seed.
    torch.set_num_threads(NUM_THREADS)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    results = train_models(args.out, only=only, seed=args.seed)
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
