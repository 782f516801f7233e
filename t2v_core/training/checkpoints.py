"""Resumable checkpoints of a fine-tuning run (the trained parameters, AdamW state, step, random
states; all safetensors / JSON), and the fingerprint that says which run they belong to."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_dir

log = logging.getLogger(__name__)

#: Settings that a checkpoint stays valid across: with a constant learning rate and one seed,
#: the first N steps of a longer run are the same steps, so more steps can resume.
RESUMABLE_ACROSS = ("steps", "checkpoint_every", "keep_checkpoints", "save_dtype")
#: The trained parameters of a checkpoint, by name: only what the run trains (a temporal
#: adapter's trainable part, a LoRA), never the frozen models around it.
TRAINED_FILE = "trained.safetensors"


def run_fingerprint(files: list, prompts: list[str], video: dict, finetune: dict, method: str) -> str:
    """sha256 of what a run's steps depend on: the clips' and masks' bytes, the captions, the
    video size, the fine-tuning settings (except RESUMABLE_ACROSS) and the fine-tuned model's name."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).name.encode())
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    settings = {k: v for k, v in finetune.items() if k not in RESUMABLE_ACROSS}
    digest.update(json.dumps([prompts, video, settings, method], sort_keys=True, default=str).encode())
    return digest.hexdigest()


class Checkpoints:
    """The ``step_<N>`` folders of one run under ``root``; only the latest is kept.

    A checkpoint whose fingerprint is not ``fingerprint`` was left by a run with other clips,
    masks, captions or settings: :meth:`resume` removes it and starts afresh.
    """

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.root, self.fingerprint = Path(root), fingerprint

    def latest(self) -> Path | None:
        done = sorted(self.root.glob("step_*[0-9]"), key=lambda p: int(p.name.split("_")[1]))
        return done[-1] if done else None

    def resume(self, params: dict, optimizer, rng) -> tuple[int, list[float]]:
        """Load the latest checkpoint of this run into the trained ``params`` (name -> tensor),
        ``optimizer``, the torch RNG and ``rng``; (step, losses so far), or (0, []) when there
        is none."""
        latest = self.latest()
        if latest is not None and not self._of_this_run(latest):
            log.warning("%s: checkpoint of a run with other data, settings or format; starting afresh", latest)
            shutil.rmtree(self.root)
            latest = None
        if latest is None:
            return 0, []
        saved = load_file(latest / TRAINED_FILE)
        if set(saved) != set(params):
            raise ValueError(f"{latest / TRAINED_FILE}: holds {len(saved)} tensors, the run trains {len(params)} "
                             f"(e.g. {sorted(set(saved) ^ set(params))[:3]}); remove {self.root} to start afresh")
        with torch.no_grad():
            for name, parameter in params.items():
                parameter.copy_(saved[name])
        tensors = load_file(latest / "optimizer.safetensors")
        torch.set_rng_state(tensors.pop("torch_rng"))
        state = optimizer.state_dict()
        for key, value in tensors.items():
            index, name = key.split(".", 1)
            state["state"].setdefault(int(index), {})[name] = value
        optimizer.load_state_dict(state)
        info = json.loads((latest / "state.json").read_text())
        rng.bit_generator.state = info["numpy_rng"]
        log.info("resuming from %s (step %d)", latest, info["step"])
        return info["step"], info["losses"]

    def _of_this_run(self, checkpoint: Path) -> bool:
        state = json.loads((checkpoint / "state.json").read_text())
        return state.get("fingerprint") == self.fingerprint and (checkpoint / TRAINED_FILE).exists()

    def save(self, step: int, params: dict, optimizer, rng, losses: list[float]) -> None:
        """Write ``step_<step>`` (complete before it gets its name), then remove the older ones."""
        ckpt_dir = self.root / f"step_{step}"
        with atomic_dir(ckpt_dir) as tmp:
            save_file({name: p.detach().cpu().contiguous() for name, p in params.items()}, tmp / TRAINED_FILE)
            tensors = {}
            for index, param_state in optimizer.state_dict()["state"].items():
                for name, value in param_state.items():
                    tensors[f"{index}.{name}"] = torch.as_tensor(value).clone()
            tensors["torch_rng"] = torch.get_rng_state()
            save_file(tensors, tmp / "optimizer.safetensors")
            (tmp / "state.json").write_text(json.dumps({
                "step": step, "numpy_rng": rng.bit_generator.state, "losses": losses, "fingerprint": self.fingerprint,
            }))
        for old in self.root.glob("step_*[0-9]"):
            if old.name != ckpt_dir.name:
                shutil.rmtree(old)
