"""Train the toy world's models from scratch, small enough for a CPU, in the real formats.

``python -m t2v_core.toy.train --out DIR [--only vae,unet,clip,sam] [--seed 0]`` writes

- ``DIR/vae``: the autoencoder alone (an ``AutoencoderKL`` folder), the input of ``unet``;
- ``DIR/base``: a Stable-Diffusion-v1-shaped pipeline folder (VAE + UNet + CLIP text encoder);
- ``DIR/clip``: an open_clip model in the ``local-dir:`` layout, for the metrics;
- ``DIR/sam``: the tiny SAM fine-tuned on the world's masks;
- ``DIR/motion_adapter``: AnimateDiff's motion modules (a diffusers ``MotionAdapter``) trained
  on the frozen ``base`` with clips of motions the demo never asks for,

each in the layout that :mod:`t2v_core.models.tiny` writes, so that
:mod:`t2v_core.models.loading` loads them unchanged. Next to each model: ``toy_metrics.json``
(final quality numbers, training time) and its loss curve (``loss.csv``, ``loss.png``).

This module is the command line; each training is in its own module (:mod:`.train_diffusion`,
:mod:`.train_clip`, :mod:`.train_sam`, :mod:`.train_motion`), over the pieces they share (:mod:`.train_common`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from .train_clip import train_clip
from .train_diffusion import train_text_to_image
from .train_vae import train_vae
from .train_motion import train_motion_adapter
from .train_sam import train_sam

log = logging.getLogger(__name__)

MODEL_NAMES = ("vae", "unet", "clip", "sam", "motion_adapter")
#: Threads of every training: results are only reproducible with the same number.
NUM_THREADS = 2


def train_models(out_dir: str | Path, only=MODEL_NAMES, seed: int = 0) -> dict:
    """Train the named models into ``out_dir``, the VAE first (the UNet is trained on its latents)
    and the CLIP before the UNet (it names the shapes of the UNet's samples, when it is there);
    the motion adapter last (it is trained on the frozen UNet)."""
    out_dir = Path(out_dir)
    unknown = set(only) - set(MODEL_NAMES)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; expected some of {MODEL_NAMES}")
    trainings = {
        "vae": lambda: train_vae(out_dir / "vae", seed=seed),
        "unet": lambda: train_text_to_image(out_dir / "base", out_dir / "vae", seed=seed, clip_dir=out_dir / "clip"),
        "clip": lambda: train_clip(out_dir / "clip", seed=seed),
        "sam": lambda: train_sam(out_dir / "sam", seed=seed),
        "motion_adapter": lambda: train_motion_adapter(out_dir / "motion_adapter", out_dir / "base", seed=seed),
    }
    results = {}
    for name in ("vae", "clip", "unet", "sam", "motion_adapter"):
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
